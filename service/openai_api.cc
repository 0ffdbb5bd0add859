#include "service/openai_api.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace phi3::service::openai {
namespace {

using nlohmann::json;

absl::Status WrongType(absl::string_view field, absl::string_view expected, const json& value) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be ", expected, ", got ", value.type_name()));
}

// Reads optional field `key` of `body` into `*out` when present and not null.
template <typename T>
absl::Status Optional(const json& body, const char* key, T* out, bool* present = nullptr) {
  if (present != nullptr) *present = false;
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) return WrongType(key, "a boolean", *it);
  } else if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer()) return WrongType(key, "an integer", *it);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) return WrongType(key, "a number", *it);
  } else {
    if (!it->is_string()) return WrongType(key, "a string", *it);
  }
  *out = it->get<T>();
  if (present != nullptr) *present = true;
  return absl::OkStatus();
}

#define PHI3_RETURN_IF_ERROR(expr)              \
  do {                                          \
    if (absl::Status s_ = (expr); !s_.ok()) return s_; \
  } while (0)

absl::Status MaxTokens(const json& body, const char* key, v1::StopOptions* stop) {
  int64_t max_tokens = 0;
  bool present = false;
  PHI3_RETURN_IF_ERROR(Optional(body, key, &max_tokens, &present));
  if (!present) return absl::OkStatus();
  if (max_tokens < 1 || max_tokens > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(key, " must be at least 1, got ", max_tokens));
  }
  stop->set_max_tokens(static_cast<int32_t>(max_tokens));
  return absl::OkStatus();
}

// Options both endpoints share, into `sampling` and `stop`.
absl::Status ParseOptions(const json& body, Endpoint endpoint, v1::SamplingOptions* sampling,
                          v1::StopOptions* stop, Request* request) {
  for (const char* unsupported : {"logit_bias", "tools", "functions", "tool_choice",
                                  "function_call", "suffix"}) {
    auto it = body.find(unsupported);
    if (it != body.end() && !it->is_null() && !it->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(unsupported, " is not supported"));
    }
  }
  auto logprobs = body.find("logprobs");
  if (logprobs != body.end() && !logprobs->is_null() && *logprobs != false && *logprobs != 0) {
    return absl::InvalidArgumentError(
        "logprobs is not supported on the HTTP API (the gRPC API reports them)");
  }
  bool echo = false;
  PHI3_RETURN_IF_ERROR(Optional(body, "echo", &echo));
  if (echo) return absl::InvalidArgumentError("echo is not supported");
  for (const char* key : {"n", "best_of"}) {
    int64_t n = 1;
    PHI3_RETURN_IF_ERROR(Optional(body, key, &n));
    if (n != 1) return absl::InvalidArgumentError(absl::StrCat(key, " must be 1, got ", n));
  }

  std::string model;
  PHI3_RETURN_IF_ERROR(Optional(body, "model", &model));
  PHI3_RETURN_IF_ERROR(Optional(body, "stream", &request->stream));
  if (auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return WrongType("stream_options", "an object", *it);
    PHI3_RETURN_IF_ERROR(Optional(*it, "include_usage", &request->include_usage));
  }

  double value = 0;
  bool present = false;
  PHI3_RETURN_IF_ERROR(Optional(body, "temperature", &value, &present));
  if (present) sampling->set_temperature(static_cast<float>(value));
  PHI3_RETURN_IF_ERROR(Optional(body, "top_p", &value, &present));
  if (present) sampling->set_top_p(static_cast<float>(value));
  PHI3_RETURN_IF_ERROR(Optional(body, "min_p", &value, &present));
  if (present) sampling->set_min_p(static_cast<float>(value));
  PHI3_RETURN_IF_ERROR(Optional(body, "repetition_penalty", &value, &present));
  if (present) sampling->set_repetition_penalty(static_cast<float>(value));
  PHI3_RETURN_IF_ERROR(Optional(body, "presence_penalty", &value, &present));
  if (present) sampling->set_presence_penalty(static_cast<float>(value));
  PHI3_RETURN_IF_ERROR(Optional(body, "frequency_penalty", &value, &present));
  if (present) sampling->set_frequency_penalty(static_cast<float>(value));
  int64_t integer = 0;
  PHI3_RETURN_IF_ERROR(Optional(body, "top_k", &integer, &present));
  // -1 is vLLM's "off"; our 0 means the same.
  if (present) sampling->set_top_k(integer == -1 ? 0 : static_cast<int32_t>(integer));
  PHI3_RETURN_IF_ERROR(Optional(body, "seed", &integer, &present));
  if (present) sampling->set_seed(static_cast<uint64_t>(integer));

  PHI3_RETURN_IF_ERROR(MaxTokens(body, "max_tokens", stop));
  // The chat API's newer name.
  if (endpoint == Endpoint::kChatCompletions) {
    PHI3_RETURN_IF_ERROR(MaxTokens(body, "max_completion_tokens", stop));
  }
  bool ignore_eos = false;
  PHI3_RETURN_IF_ERROR(Optional(body, "ignore_eos", &ignore_eos));
  stop->set_ignore_eos(ignore_eos);
  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      stop->add_stop(it->get<std::string>());
    } else if (it->is_array()) {
      for (size_t i = 0; i < it->size(); ++i) {
        if (!(*it)[i].is_string()) {
          return WrongType(absl::StrCat("stop[", i, "]"), "a string", (*it)[i]);
        }
        stop->add_stop((*it)[i].get<std::string>());
      }
    } else {
      return WrongType("stop", "a string or an array of strings", *it);
    }
  }
  return absl::OkStatus();
}

absl::Status ParsePrompt(const json& body, v1::GenerateRequest* out) {
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return absl::InvalidArgumentError("prompt is missing");
  if (it->is_string()) {
    out->set_prompt(it->get<std::string>());
    return absl::OkStatus();
  }
  if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
    out->set_prompt((*it)[0].get<std::string>());
    return absl::OkStatus();
  }
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
    for (size_t i = 0; i < it->size(); ++i) {
      const json& id = (*it)[i];
      if (!id.is_number_integer() || id.get<int64_t>() < INT32_MIN ||
          id.get<int64_t>() > INT32_MAX) {
        return WrongType(absl::StrCat("prompt[", i, "]"), "a token id", id);
      }
      out->add_prompt_tokens(id.get<int32_t>());
    }
    return absl::OkStatus();
  }
  return WrongType("prompt", "a string, one string in an array, or an array of token ids", *it);
}

absl::Status ParseMessages(const json& body, v1::ChatRequest* out) {
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array()) {
    return absl::InvalidArgumentError("messages must be an array of messages");
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string where = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return WrongType(where, "an object", m);
    std::string role;
    PHI3_RETURN_IF_ERROR(Optional(m, "role", &role));
    v1::ChatMessage* message = out->add_messages();
    if (role == "system" || role == "developer") {
      message->set_role(v1::ChatMessage::ROLE_SYSTEM);
    } else if (role == "user") {
      message->set_role(v1::ChatMessage::ROLE_USER);
    } else if (role == "assistant") {
      message->set_role(v1::ChatMessage::ROLE_ASSISTANT);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".role must be system, developer, user or assistant, got \"", role, "\""));
    }
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) continue;  // e.g. an assistant turn
    if (content->is_string()) {
      message->set_content(content->get<std::string>());
      continue;
    }
    if (!content->is_array()) return WrongType(where + ".content", "a string or parts", *content);
    for (size_t j = 0; j < content->size(); ++j) {
      const json& part = (*content)[j];
      const std::string part_where = absl::StrCat(where, ".content[", j, "]");
      if (!part.is_object() || part.value("type", "") != "text" ||
          !part.contains("text") || !part["text"].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(part_where, " must be {\"type\": \"text\", \"text\": ...}"));
      }
      message->mutable_content()->append(part["text"].get<std::string>());
    }
  }
  return absl::OkStatus();
}

json UsageJson(const v1::Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens()},
          {"completion_tokens", usage.completion_tokens()},
          {"total_tokens", usage.prompt_tokens() + usage.completion_tokens()},
          {"prompt_tokens_details", {{"cached_tokens", usage.cached_prompt_tokens()}}}};
}

json Envelope(Endpoint endpoint, bool chunk, const ResponseHeader& header) {
  const char* object = endpoint == Endpoint::kCompletions ? "text_completion"
                       : chunk                            ? "chat.completion.chunk"
                                                          : "chat.completion";
  return {{"id", header.id}, {"object", object}, {"created", header.created},
          {"model", header.model}, {"system_fingerprint", nullptr}};
}

}  // namespace

absl::StatusOr<Request> ParseRequest(Endpoint endpoint, absl::string_view body) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return absl::InvalidArgumentError("the body is not valid JSON");
  if (!parsed.is_object()) return WrongType("the body", "a JSON object", parsed);
  Request request;
  request.endpoint = endpoint;
  if (endpoint == Endpoint::kCompletions) {
    PHI3_RETURN_IF_ERROR(ParsePrompt(parsed, &request.generate));
    PHI3_RETURN_IF_ERROR(ParseOptions(parsed, endpoint, request.generate.mutable_sampling(),
                                      request.generate.mutable_stop(), &request));
  } else {
    PHI3_RETURN_IF_ERROR(ParseMessages(parsed, &request.chat));
    PHI3_RETURN_IF_ERROR(ParseOptions(parsed, endpoint, request.chat.mutable_sampling(),
                                      request.chat.mutable_stop(), &request));
  }
  return request;
}

const char* FinishReasonName(v1::FinishReason reason) {
  return reason == v1::FINISH_REASON_LENGTH ? "length" : "stop";
}

json CompletionResponse(Endpoint endpoint, const ResponseHeader& header, const std::string& text,
                        const v1::GenerateResponse& last) {
  json out = Envelope(endpoint, /*chunk=*/false, header);
  json choice = {{"index", 0}, {"logprobs", nullptr},
                 {"finish_reason", FinishReasonName(last.finish_reason())}};
  if (endpoint == Endpoint::kCompletions) {
    choice["text"] = text;
  } else {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  }
  out["choices"] = json::array({std::move(choice)});
  out["usage"] = UsageJson(last.usage());
  return out;
}

json StreamChunk(const Request& request, const ResponseHeader& header, const std::string& text,
                 bool first, const v1::GenerateResponse* last) {
  json out = Envelope(request.endpoint, /*chunk=*/true, header);
  json choice = {{"index", 0}, {"logprobs", nullptr},
                 {"finish_reason",
                  last != nullptr ? json(FinishReasonName(last->finish_reason())) : json()}};
  if (request.endpoint == Endpoint::kCompletions) {
    choice["text"] = text;
  } else {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || first) delta["content"] = text;
    choice["delta"] = std::move(delta);
  }
  out["choices"] = json::array({std::move(choice)});
  if (request.include_usage) out["usage"] = nullptr;
  return out;
}

json UsageChunk(const Request& request, const ResponseHeader& header, const v1::Usage& usage) {
  json out = Envelope(request.endpoint, /*chunk=*/true, header);
  out["choices"] = json::array();
  out["usage"] = UsageJson(usage);
  return out;
}

int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

json ErrorBody(const absl::Status& status) {
  const int http = HttpStatusOf(status);
  const char* type = http == 401   ? "authentication_error"
                     : http == 429 ? "rate_limit_error"
                     : http < 500  ? "invalid_request_error"
                                   : "server_error";
  return {{"error",
           {{"message", std::string(status.message())},
            {"type", type},
            {"param", nullptr},
            {"code", absl::StatusCodeToString(status.code())}}}};
}

json ModelObject(const std::string& model, int64_t created) {
  return {{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "phi3serve"}};
}

json ModelList(const std::string& model, int64_t created) {
  return {{"object", "list"}, {"data", json::array({ModelObject(model, created)})}};
}

}  // namespace phi3::service::openai
