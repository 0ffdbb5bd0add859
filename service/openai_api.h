// The OpenAI-compatible wire format: JSON request bodies to phi3.v1 request
// messages (validated further by request_convert.h, the one validator), and
// phi3.v1 responses to OpenAI JSON objects. Pure functions, no I/O.
//
// Accepted: model (any name; responses carry the served name), prompt (a
// string, a one-string array or an array of token ids), messages (system,
// developer (as system), user, assistant; content as a string or text
// parts), max_tokens / max_completion_tokens, temperature, top_p, seed, stop,
// presence_penalty, frequency_penalty, n = 1, stream, stream_options.
// include_usage, user; and as extensions (vLLM's names) top_k, min_p,
// repetition_penalty, ignore_eos. Rejected with InvalidArgument: n > 1,
// best_of > 1, echo, suffix, logit_bias, logprobs, tools/functions.
#ifndef PHI3_SERVICE_OPENAI_API_H_
#define PHI3_SERVICE_OPENAI_API_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "proto/phi3/v1/phi3.pb.h"

namespace phi3::service::openai {

enum class Endpoint { kCompletions, kChatCompletions };

struct Request {
  Endpoint endpoint = Endpoint::kCompletions;
  v1::GenerateRequest generate;  // kCompletions
  v1::ChatRequest chat;          // kChatCompletions
  bool stream = false;
  bool include_usage = false;    // stream_options.include_usage
};

// Parses a POST body of `endpoint`. InvalidArgument names the field.
absl::StatusOr<Request> ParseRequest(Endpoint endpoint, absl::string_view body);

// What every response object of one request shares.
struct ResponseHeader {
  std::string id;      // "cmpl-..." or "chatcmpl-..."
  int64_t created = 0; // Unix seconds
  std::string model;   // the served model name
};

// A whole (non-streamed) response from all of a generation's text and its
// last message (finish_reason, usage).
nlohmann::json CompletionResponse(Endpoint endpoint, const ResponseHeader& header,
                                  const std::string& text, const v1::GenerateResponse& last);

// One streamed chunk: `text` produced since the previous chunk, with
// `first` adding the chat role and `last` (finish_reason set) closing the
// choice. Chunks carry "usage": null when the client asked for usage.
nlohmann::json StreamChunk(const Request& request, const ResponseHeader& header,
                           const std::string& text, bool first,
                           const v1::GenerateResponse* last);
// The extra chunk with empty choices and the usage (stream_options.include_usage).
nlohmann::json UsageChunk(const Request& request, const ResponseHeader& header,
                          const v1::Usage& usage);

// "stop" or "length" (OpenAI's finish_reason values).
const char* FinishReasonName(v1::FinishReason reason);

// The error body and HTTP status for `status` (400, 401, 404, 429, 499,
// 500, 503, 504).
int HttpStatusOf(const absl::Status& status);
nlohmann::json ErrorBody(const absl::Status& status);

// GET /v1/models and /v1/models/{id}.
nlohmann::json ModelObject(const std::string& model, int64_t created);
nlohmann::json ModelList(const std::string& model, int64_t created);

}  // namespace phi3::service::openai

#endif  // PHI3_SERVICE_OPENAI_API_H_
