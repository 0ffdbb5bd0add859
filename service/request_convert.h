// Validation of API requests and their conversion to engine requests, and
// engine results back to API messages. No I/O, no gRPC calls: pure functions,
// so every validation error is unit-testable.
#ifndef PHI3_SERVICE_REQUEST_CONVERT_H_
#define PHI3_SERVICE_REQUEST_CONVERT_H_

#include <string>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "proto/phi3/v1/phi3.pb.h"

namespace phi3::service {

// Limits the service enforces before a request reaches the engine.
struct RequestLimits {
  int context_size = 4096;     // prompt + max_tokens must fit
  int vocab_size = 32064;      // token ids must be in [0, vocab_size)
  int max_stop_strings = 16;
  int max_stop_string_bytes = 256;
  int max_stop_token_ids = 64;
  int max_top_logprobs = 20;
  int default_max_tokens = 256;  // when the request says 0
  int max_chat_messages = 256;
};

// Checks ranges and fills request->sampling and request->stop. InvalidArgument
// names the field, the accepted range and the value given.
absl::Status ConvertOptions(const v1::SamplingOptions& sampling, const v1::StopOptions& stop,
                            const RequestLimits& limits, GenerateRequest* request);

// Tokenizes the prompt (via `engine`) and validates everything. `tenant`
// goes into the request. The returned request fits the context.
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
