#include "service/request_convert.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace phi3::service {
namespace {

absl::Status OutOfRange(absl::string_view field, absl::string_view range, double value) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be in ", range, ", got ", value));
}

// Checks prompt tokens against the vocabulary and the prompt plus completion
// (none for a prefill) against the context.
absl::Status CheckPrompt(const GenerateRequest& request, const RequestLimits& limits) {
  const int num_prompt = static_cast<int>(request.prompt_tokens.size());
  if (num_prompt == 0) {
    return absl::InvalidArgumentError("prompt is empty (0 tokens)");
  }
  for (int i = 0; i < num_prompt; ++i) {
    int32_t id = request.prompt_tokens[i];
    if (id < 0 || id >= limits.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt_tokens[", i, "] = ", id,
                                                     " is outside the vocabulary [0, ",
                                                     limits.vocab_size, ")"));
    }
  }
  const int max_tokens = request.prefill_only ? 0 : request.stop.max_tokens;
  const int64_t needed = int64_t{num_prompt} + max_tokens;
  if (needed > limits.context_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt (", num_prompt, " tokens) + max_tokens (", max_tokens,
        ") = ", needed, " exceeds the context size of ", limits.context_size, " tokens"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ConvertOptions(const v1::SamplingOptions& s, const v1::StopOptions& stop,
                            const RequestLimits& limits, GenerateRequest* request) {
  SamplingParams& p = request->sampling;
  p.temperature = s.has_temperature() ? s.temperature() : 1.0f;
  if (!(p.temperature >= 0.0f && p.temperature <= 2.0f)) {
    return OutOfRange("sampling.temperature", "[0, 2]", p.temperature);
  }
  p.top_k = s.top_k();
  if (p.top_k < 0) return OutOfRange("sampling.top_k", "[0, inf) (0 = off)", p.top_k);
  p.top_p = s.has_top_p() ? s.top_p() : 1.0f;
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return OutOfRange("sampling.top_p", "(0, 1]", p.top_p);
  p.min_p = s.min_p();
  if (!(p.min_p >= 0.0f && p.min_p < 1.0f)) return OutOfRange("sampling.min_p", "[0, 1)", p.min_p);
  p.repetition_penalty = s.has_repetition_penalty() ? s.repetition_penalty() : 1.0f;
  if (!(p.repetition_penalty > 0.0f && p.repetition_penalty <= 10.0f)) {
    return OutOfRange("sampling.repetition_penalty", "(0, 10]", p.repetition_penalty);
  }
  p.presence_penalty = s.presence_penalty();
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f)) {
    return OutOfRange("sampling.presence_penalty", "[-2, 2]", p.presence_penalty);
  }
  p.frequency_penalty = s.frequency_penalty();
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f)) {
    return OutOfRange("sampling.frequency_penalty", "[-2, 2]", p.frequency_penalty);
  }
  p.seed = s.seed();
  p.num_top_logprobs = s.top_logprobs();
  if (p.num_top_logprobs < 0 || p.num_top_logprobs > limits.max_top_logprobs) {
    return OutOfRange("sampling.top_logprobs", absl::StrCat("[0, ", limits.max_top_logprobs, "]"),
                      p.num_top_logprobs);
  }
  p.logprobs = s.logprobs() || p.num_top_logprobs > 0;

  StopParams& q = request->stop;
  if (stop.max_tokens() < 0) {
    return OutOfRange("stop.max_tokens", "[0, context size] (0 = server default)",
                      stop.max_tokens());
  }
  q.max_tokens = stop.max_tokens() == 0 ? limits.default_max_tokens : stop.max_tokens();
  if (stop.stop_size() > limits.max_stop_strings) {
    return absl::InvalidArgumentError(absl::StrCat("too many stop strings: ", stop.stop_size(),
                                                   " given, at most ", limits.max_stop_strings));
  }
  q.stop_strings.clear();
  for (int i = 0; i < stop.stop_size(); ++i) {
    const std::string& text = stop.stop(i);
    if (text.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("stop.stop[", i, "] is empty"));
    }
    if (static_cast<int>(text.size()) > limits.max_stop_string_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("stop.stop[", i, "] is ", text.size(),
                                                     " bytes, at most ",
                                                     limits.max_stop_string_bytes));
    }
    q.stop_strings.push_back(text);
  }
  if (stop.stop_token_ids_size() > limits.max_stop_token_ids) {
    return absl::InvalidArgumentError(
        absl::StrCat("too many stop token ids: ", stop.stop_token_ids_size(), " given, at most ",
                     limits.max_stop_token_ids));
  }
  q.stop_token_ids.assign(stop.stop_token_ids().begin(), stop.stop_token_ids().end());
  for (size_t i = 0; i < q.stop_token_ids.size(); ++i) {
    int32_t id = q.stop_token_ids[i];
    if (id < 0 || id >= limits.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("stop.stop_token_ids[", i, "] = ", id,
                                                     " is outside the vocabulary [0, ",
                                                     limits.vocab_size, ")"));
    }
  }
  q.ignore_eos = stop.ignore_eos();
  return absl::OkStatus();
}

absl::StatusOr<GenerateRequest> ConvertGenerate(const v1::GenerateRequest& proto,
                                                const Engine& engine,
                                                const RequestLimits& limits,
                                                const std::string& tenant) {
  GenerateRequest request;
  request.tenant = tenant;
  request.prefill_only = proto.prefill_only();
  if (!proto.prompt().empty() && proto.prompt_tokens_size() > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "give either prompt (", proto.prompt().size(), " bytes) or prompt_tokens (",
        proto.prompt_tokens_size(), " ids), not both"));
  }
  if (absl::Status s = ConvertOptions(proto.sampling(), proto.stop(), limits, &request); !s.ok()) {
    return s;
  }
  if (proto.prompt_tokens_size() > 0) {
    request.prompt_tokens.assign(proto.prompt_tokens().begin(), proto.prompt_tokens().end());
  } else if (!proto.prompt().empty()) {
    request.prompt_tokens = engine.Tokenize(
        proto.prompt(), proto.has_add_special() ? proto.add_special() : true,
        proto.parse_special());
  }
  if (absl::Status s = CheckPrompt(request, limits); !s.ok()) return s;
  return request;
}

absl::StatusOr<GenerateRequest> ConvertChat(const v1::ChatRequest& proto, const Engine& engine,
                                            const RequestLimits& limits,
                                            const std::string& tenant) {
  GenerateRequest request;
  request.tenant = tenant;
  if (proto.messages_size() == 0) {
    return absl::InvalidArgumentError("messages is empty (0 messages)");
  }
  if (proto.messages_size() > limits.max_chat_messages) {
    return absl::InvalidArgumentError(absl::StrCat("too many messages: ", proto.messages_size(),
                                                   " given, at most ", limits.max_chat_messages));
  }
  if (absl::Status s = ConvertOptions(proto.sampling(), proto.stop(), limits, &request); !s.ok()) {
    return s;
  }
  std::vector<ChatMessage> messages;
  messages.reserve(proto.messages_size());
  for (int i = 0; i < proto.messages_size(); ++i) {
    const v1::ChatMessage& m = proto.messages(i);
    ChatMessage message;
    switch (m.role()) {
      case v1::ChatMessage::ROLE_SYSTEM: message.role = ChatMessage::Role::kSystem; break;
      case v1::ChatMessage::ROLE_USER: message.role = ChatMessage::Role::kUser; break;
      case v1::ChatMessage::ROLE_ASSISTANT: message.role = ChatMessage::Role::kAssistant; break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "messages[", i, "].role must be ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT, got ",
            static_cast<int>(m.role())));
    }
    message.content = m.content();
    messages.push_back(std::move(message));
  }
  absl::StatusOr<std::vector<int32_t>> tokens = engine.ApplyChatTemplate(messages);
  if (!tokens.ok()) return tokens.status();
  request.prompt_tokens = *std::move(tokens);
  if (absl::Status s = CheckPrompt(request, limits); !s.ok()) return s;
  return request;
}

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return v1::FINISH_REASON_STOP;
    case FinishReason::kLength: return v1::FINISH_REASON_LENGTH;
    case FinishReason::kStopSequence: return v1::FINISH_REASON_STOP_SEQUENCE;
    case FinishReason::kCancelled: return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kDeadline: return v1::FINISH_REASON_DEADLINE;
    case FinishReason::kError: return v1::FINISH_REASON_ERROR;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

void ToProto(const Usage& usage, v1::Usage* out) {
  out->set_prompt_tokens(usage.prompt_tokens);
  out->set_cached_prompt_tokens(usage.cached_prompt_tokens);
  out->set_completion_tokens(usage.completion_tokens);
}

void ToProto(const Timings& timings, v1::Timings* out) {
  out->set_queue_ms(absl::ToDoubleMilliseconds(timings.queue_wait));
  out->set_ttft_ms(absl::ToDoubleMilliseconds(timings.time_to_first_token));
  out->set_total_ms(absl::ToDoubleMilliseconds(timings.total));
}

void AppendLogprobs(const TokenEvent& event, v1::GenerateResponse* out) {
  v1::TokenLogprobs* lp = out->add_logprobs();
  lp->set_token_id(event.token_id);
  lp->set_logprob(event.logprob);
  for (const TokenLogprob& alt : event.top_logprobs) {
    v1::TokenLogprob* t = lp->add_top();
    t->set_token_id(alt.token_id);
    t->set_logprob(alt.logprob);
  }
}

}  // namespace phi3::service
