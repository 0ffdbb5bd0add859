// ValidateRequest and FinishReasonName from engine/engine.h.
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"

namespace phi3 {
namespace {

absl::Status OutOfRange(const char* field, double value, const char* range) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " = ", value, " is out of range: expected ", range));
}

}  // namespace

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "STOP";
    case FinishReason::kLength:
      return "LENGTH";
    case FinishReason::kStopSequence:
      return "STOP_SEQUENCE";
    case FinishReason::kCancelled:
      return "CANCELLED";
    case FinishReason::kDeadline:
      return "DEADLINE";
    case FinishReason::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

absl::Status ValidateRequest(const GenerateRequest& request, int context_size, int vocab_size) {
  const SamplingParams& s = request.sampling;
  const StopParams& stop = request.stop;
  if (request.prompt_tokens.empty()) {
    return absl::InvalidArgumentError("prompt_tokens is empty: a prompt needs at least 1 token");
  }
  for (size_t i = 0; i < request.prompt_tokens.size(); ++i) {
    const int32_t t = request.prompt_tokens[i];
    if (t < 0 || t >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt_tokens[", i, "] = ", t, " is not a token id: expected [0, ", vocab_size, ")"));
    }
  }
  if (!request.prefill_only && stop.max_tokens < 1) {
    return OutOfRange("max_tokens", stop.max_tokens, ">= 1");
  }
  const int max_tokens = request.prefill_only ? 0 : stop.max_tokens;
  const int64_t total = static_cast<int64_t>(request.prompt_tokens.size()) + max_tokens;
  if (total > context_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt_tokens (", request.prompt_tokens.size(), ") + max_tokens (", max_tokens,
        ") = ", total, " exceeds the context size of ", context_size, " tokens"));
  }
  if (!std::isfinite(s.temperature) || s.temperature < 0.0f || s.temperature > 100.0f) {
    return OutOfRange("temperature", s.temperature, "[0, 100] (0 = greedy)");
  }
  if (s.top_k < 0) return OutOfRange("top_k", s.top_k, ">= 0 (0 = no limit)");
  if (!(s.top_p > 0.0f && s.top_p <= 1.0f)) return OutOfRange("top_p", s.top_p, "(0, 1]");
  if (!(s.min_p >= 0.0f && s.min_p < 1.0f)) return OutOfRange("min_p", s.min_p, "[0, 1)");
  if (!(s.repetition_penalty > 0.0f && s.repetition_penalty <= 100.0f)) {
    return OutOfRange("repetition_penalty", s.repetition_penalty, "(0, 100] (1 = off)");
  }
  if (!(s.presence_penalty >= -2.0f && s.presence_penalty <= 2.0f)) {
    return OutOfRange("presence_penalty", s.presence_penalty, "[-2, 2]");
  }
  if (!(s.frequency_penalty >= -2.0f && s.frequency_penalty <= 2.0f)) {
    return OutOfRange("frequency_penalty", s.frequency_penalty, "[-2, 2]");
  }
  if (s.num_top_logprobs < 0 || s.num_top_logprobs > kMaxTopLogprobs) {
    return OutOfRange("num_top_logprobs", s.num_top_logprobs, "[0, 20]");
  }
  if (stop.stop_strings.size() > static_cast<size_t>(kMaxStopStrings)) {
    return absl::InvalidArgumentError(absl::StrCat("stop_strings has ", stop.stop_strings.size(),
                                                   " entries: at most ", kMaxStopStrings));
  }
  for (size_t i = 0; i < stop.stop_strings.size(); ++i) {
    const size_t n = stop.stop_strings[i].size();
    if (n == 0 || n > static_cast<size_t>(kMaxStopStringBytes)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stop_strings[", i, "] has ", n, " bytes: expected [1, ", kMaxStopStringBytes, "]"));
    }
  }
  if (stop.stop_token_ids.size() > static_cast<size_t>(kMaxStopTokenIds)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stop_token_ids has ", stop.stop_token_ids.size(), " entries: at most ", kMaxStopTokenIds));
  }
  for (size_t i = 0; i < stop.stop_token_ids.size(); ++i) {
    const int32_t t = stop.stop_token_ids[i];
    if (t < 0 || t >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stop_token_ids[", i, "] = ", t, " is not a token id: expected [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace phi3
