#include "service/request_convert.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace phi3::service {

int64_t RequestLimits::PromptByteLimit() const {
  return max_prompt_bytes > 0 ? max_prompt_bytes : int64_t{64} * context_size;
}

absl::Status CheckTextBytes(absl::string_view field, size_t num_bytes,
                            const RequestLimits& limits) {
  const int64_t limit = limits.PromptByteLimit();
  if (static_cast<uint64_t>(num_bytes) <= static_cast<uint64_t>(limit)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, " is ", num_bytes,
                                                 " bytes, more than the limit of ", limit,
                                                 " bytes (checked before tokenizing)"));
}

absl::Status ValidateRequestLimits(const RequestLimits& limits) {
  auto bad = [](const char* field, int value, const std::string& range) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " = ", value, " is out of range: expected ", range));
  };
  if (limits.context_size < 2) return bad("context_size", limits.context_size, ">= 2");
  if (limits.vocab_size < 1) return bad("vocab_size", limits.vocab_size, ">= 1");
  if (limits.default_max_tokens < 1) {
    return bad("default_max_tokens", limits.default_max_tokens, ">= 1");
  }
  if (limits.max_stop_strings < 0 || limits.max_stop_strings > kMaxStopStrings) {
    return bad("max_stop_strings", limits.max_stop_strings,
               absl::StrCat("[0, ", kMaxStopStrings, "] (the engine's limit)"));
  }
  if (limits.max_chat_messages < 1) {
    return bad("max_chat_messages", limits.max_chat_messages, ">= 1");
  }
  return absl::OkStatus();
}

absl::Status ConvertOptions(const v1::SamplingOptions& s, const v1::StopOptions& stop,
                            const RequestLimits& limits, GenerateRequest* request) {
  SamplingParams& p = request->sampling;
  const SamplingParams defaults;
  p.temperature = s.has_temperature() ? s.temperature() : defaults.temperature;
  p.top_k = s.top_k();
  p.top_p = s.has_top_p() ? s.top_p() : defaults.top_p;
  p.min_p = s.min_p();
  p.repetition_penalty =
      s.has_repetition_penalty() ? s.repetition_penalty() : defaults.repetition_penalty;
  p.presence_penalty = s.presence_penalty();
  p.frequency_penalty = s.frequency_penalty();
  p.seed = s.seed();
  p.num_top_logprobs = s.top_logprobs();
  p.logprobs = s.logprobs() || p.num_top_logprobs > 0;
  if (absl::Status status = ValidateSamplingParams(p); !status.ok()) return status;

  StopParams& q = request->stop;
  q.max_tokens = stop.max_tokens() == 0 ? limits.default_max_tokens : stop.max_tokens();
  if (stop.stop_size() > limits.max_stop_strings) {
    return absl::InvalidArgumentError(absl::StrCat("too many stop strings: ", stop.stop_size(),
                                                   " given, at most ", limits.max_stop_strings));
  }
  q.stop_strings.assign(stop.stop().begin(), stop.stop().end());
  q.stop_token_ids.assign(stop.stop_token_ids().begin(), stop.stop_token_ids().end());
  q.ignore_eos = stop.ignore_eos();
  return ValidateStopParams(q, limits.vocab_size);
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
  if (proto.prompt_tokens_size() > limits.context_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt_tokens has ", proto.prompt_tokens_size(),
                     " ids, more than the context size of ", limits.context_size, " tokens"));
  }
  if (absl::Status s = CheckTextBytes("prompt", proto.prompt().size(), limits); !s.ok()) {
    return s;
  }
  if (proto.prompt_tokens_size() > 0) {
    request.prompt_tokens.assign(proto.prompt_tokens().begin(), proto.prompt_tokens().end());
  } else if (!proto.prompt().empty()) {
    request.prompt_tokens = engine.Tokenize(
        proto.prompt(), proto.has_add_special() ? proto.add_special() : true,
        proto.parse_special());
  }
  if (absl::Status s = ValidateRequest(request, limits.context_size, limits.vocab_size);
      !s.ok()) {
    return s;
  }
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
  size_t num_bytes = 0;
  for (const v1::ChatMessage& m : proto.messages()) num_bytes += m.content().size();
  if (absl::Status s = CheckTextBytes("messages (contents summed)", num_bytes, limits); !s.ok()) {
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
  if (absl::Status s = ValidateRequest(request, limits.context_size, limits.vocab_size);
      !s.ok()) {
    return s;
  }
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
