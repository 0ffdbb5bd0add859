// Conversion of API requests to engine requests (validated by the engine's
// one validator, engine/engine.h), and of engine results back to API
// messages. No I/O, no gRPC calls: pure functions, so every validation error
// is unit-testable.
#ifndef PHI3_SERVICE_REQUEST_CONVERT_H_
#define PHI3_SERVICE_REQUEST_CONVERT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/engine.h"
#include "proto/phi3/v1/phi3.pb.h"

namespace phi3::service {

// What the service adds to the engine's request ranges (engine/engine.h, the
// one table): defaults for what the API leaves unset, and limits that may only
// tighten the engine's.
struct RequestLimits {
  int context_size = 4096;  // prompt + max_tokens must fit (the engine's context)
  int vocab_size = 32064;   // token ids must be in [0, vocab_size)
  int default_max_tokens = StopParams().max_tokens;  // when the request says 0
  int max_stop_strings = kMaxStopStrings;            // [0, kMaxStopStrings]
  int max_chat_messages = 256;
  // Bytes of prompt text (Generate prompt, Chat contents summed, Tokenize
  // text), checked before tokenizing; 0 = 64 bytes per context token (no
  // token of the vocabulary is longer, so a longer prompt cannot fit).
  int64_t max_prompt_bytes = 0;
  int64_t PromptByteLimit() const;
};

// InvalidArgument when `num_bytes` of text in `field` exceed the prompt byte
// limit, naming both numbers.
absl::Status CheckTextBytes(absl::string_view field, size_t num_bytes,
                            const RequestLimits& limits);

// Checks limits at start-up: InvalidArgument naming the field when a limit
// would widen the engine's or is not positive.
absl::Status ValidateRequestLimits(const RequestLimits& limits);

// Converts the options into request->sampling and request->stop (unset proto
// fields take the documented defaults) and checks them: the engine's ranges
// (ValidateSamplingParams, ValidateStopParams) and the service's tighter
// limits. InvalidArgument names the field, the accepted range and the value.
absl::Status ConvertOptions(const v1::SamplingOptions& sampling, const v1::StopOptions& stop,
                            const RequestLimits& limits, GenerateRequest* request);

// Validates everything, checking the prompt's size in bytes before
// tokenizing it (via `engine`) and in tokens after (ValidateRequest).
// `tenant` goes into the request. The returned request fits the context.
absl::StatusOr<GenerateRequest> ConvertGenerate(const v1::GenerateRequest& proto,
                                                const Engine& engine,
                                                const RequestLimits& limits,
                                                const std::string& tenant);
absl::StatusOr<GenerateRequest> ConvertChat(const v1::ChatRequest& proto, const Engine& engine,
                                            const RequestLimits& limits,
                                            const std::string& tenant);

v1::FinishReason ToProto(FinishReason reason);
void ToProto(const Usage& usage, v1::Usage* out);
void ToProto(const Timings& timings, v1::Timings* out);
// Appends one token's logprobs to `out`.
void AppendLogprobs(const TokenEvent& event, v1::GenerateResponse* out);

}  // namespace phi3::service

#endif  // PHI3_SERVICE_REQUEST_CONVERT_H_
