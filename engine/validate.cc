// The request validator and FinishReasonName from engine/engine.h: the one
// place that knows the accepted request ranges (the table in engine.h).
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"

namespace phi3 {
namespace {

absl::Status OutOfRange(const char* field, const std::string& range, double value) {
  return absl::InvalidArgumentError(absl::StrCat(field, " must be in ", range, ", got ", value));
}

// Messages name fields by their path in GenerateRequest ("sampling.top_p"),
// which is also their path in the gRPC API except where noted in engine.h.
absl::Status CheckTokenIds(const char* field, const std::vector<int32_t>& ids, int vocab_size) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "] = ", ids[i],
                                                     " is outside the vocabulary [0, ",
                                                     vocab_size, ")"));
    }
  }
  return absl::OkStatus();
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

absl::Status ValidateSamplingParams(const SamplingParams& s) {
  // Written as !(in range) so that NaN is out of every range.
  if (!(s.temperature >= 0.0f && s.temperature <= kMaxTemperature)) {
    return OutOfRange("sampling.temperature", absl::StrCat("[0, ", kMaxTemperature, "]"),
                      s.temperature);
  }
  if (s.top_k < 0) return OutOfRange("sampling.top_k", "[0, inf) (0 = off)", s.top_k);
  if (!(s.top_p > 0.0f && s.top_p <= 1.0f)) return OutOfRange("sampling.top_p", "(0, 1]", s.top_p);
  if (!(s.min_p >= 0.0f && s.min_p < 1.0f)) return OutOfRange("sampling.min_p", "[0, 1)", s.min_p);
  if (!(s.repetition_penalty > 0.0f && s.repetition_penalty <= kMaxRepetitionPenalty)) {
    return OutOfRange("sampling.repetition_penalty",
                      absl::StrCat("(0, ", kMaxRepetitionPenalty, "]"), s.repetition_penalty);
  }
  const std::string penalty_range = absl::StrCat("[-", kMaxPenalty, ", ", kMaxPenalty, "]");
  if (!(std::fabs(s.presence_penalty) <= kMaxPenalty)) {
    return OutOfRange("sampling.presence_penalty", penalty_range, s.presence_penalty);
  }
  if (!(std::fabs(s.frequency_penalty) <= kMaxPenalty)) {
    return OutOfRange("sampling.frequency_penalty", penalty_range, s.frequency_penalty);
  }
  if (s.num_top_logprobs < 0 || s.num_top_logprobs > kMaxTopLogprobs) {
    return OutOfRange("sampling.num_top_logprobs", absl::StrCat("[0, ", kMaxTopLogprobs, "]"),
                      s.num_top_logprobs);
  }
  return absl::OkStatus();
}

absl::Status ValidateStopParams(const StopParams& stop, int vocab_size) {
  if (stop.stop_strings.size() > static_cast<size_t>(kMaxStopStrings)) {
    return absl::InvalidArgumentError(absl::StrCat("too many stop strings: ",
                                                   stop.stop_strings.size(), " given, at most ",
                                                   kMaxStopStrings));
  }
  for (size_t i = 0; i < stop.stop_strings.size(); ++i) {
    const size_t n = stop.stop_strings[i].size();
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrCat("stop.stop_strings[", i, "] is empty"));
    }
    if (n > static_cast<size_t>(kMaxStopStringBytes)) {
      return absl::InvalidArgumentError(absl::StrCat("stop.stop_strings[", i, "] is ", n,
                                                     " bytes, at most ", kMaxStopStringBytes));
    }
  }
  if (stop.stop_token_ids.size() > static_cast<size_t>(kMaxStopTokenIds)) {
    return absl::InvalidArgumentError(absl::StrCat("too many stop token ids: ",
                                                   stop.stop_token_ids.size(), " given, at most ",
                                                   kMaxStopTokenIds));
  }
  return CheckTokenIds("stop.stop_token_ids", stop.stop_token_ids, vocab_size);
}

absl::Status ValidateRequest(const GenerateRequest& request, int context_size, int vocab_size) {
  const size_t num_prompt = request.prompt_tokens.size();
  if (num_prompt == 0) return absl::InvalidArgumentError("prompt is empty (0 tokens)");
  if (absl::Status s = CheckTokenIds("prompt_tokens", request.prompt_tokens, vocab_size); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateSamplingParams(request.sampling); !s.ok()) return s;
  if (absl::Status s = ValidateStopParams(request.stop, vocab_size); !s.ok()) return s;
  // A prefill samples nothing: its max_tokens is not used.
  const int max_tokens = request.prefill_only ? 0 : request.stop.max_tokens;
  if (!request.prefill_only && max_tokens < 1) {
    return OutOfRange("stop.max_tokens", "[1, context size]", max_tokens);
  }
  const int64_t needed = static_cast<int64_t>(num_prompt) + max_tokens;
  if (needed > context_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt (", num_prompt, " tokens) + max_tokens (", max_tokens, ") = ", needed,
        " exceeds the context size of ", context_size, " tokens"));
  }
  return absl::OkStatus();
}

}  // namespace phi3
