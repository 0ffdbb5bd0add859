#include "service/accounting.h"

#include <random>

#include "absl/strings/str_format.h"

namespace phi3::service {
namespace {

// Covers one engine step of the tiny test models and scheduling jitter; a
// real model's step can be longer, then the client's timer may win.
constexpr absl::Duration kDeadlineMargin = absl::Milliseconds(50);

}  // namespace

std::string NewRequestId() {
  thread_local std::mt19937_64 rng([] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }());
  return absl::StrFormat("%016x%016x", rng(), rng());
}

absl::Time EngineDeadline(absl::Time call_deadline) {
  if (call_deadline == absl::InfiniteFuture()) return call_deadline;
  return call_deadline - kDeadlineMargin;
}

FinishReason ReportedReason(FinishReason engine_reason, bool deadline_passed) {
  return engine_reason == FinishReason::kCancelled && deadline_passed ? FinishReason::kDeadline
                                                                      : engine_reason;
}

const char* ReasonLabel(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kStopSequence: return "stop_sequence";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kDeadline: return "deadline";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

ledger::UsageRecord ToUsageRecord(const FinishedRequest& request, absl::string_view model_sha256,
                                  absl::Time finished_at) {
  ledger::UsageRecord r;
  r.request_id = request.request_id;
  r.finished_at = finished_at;
  r.tenant = request.tenant;
  r.key_id = request.key_id;
  r.api = request.api;
  r.model_sha256 = std::string(model_sha256);
  r.prompt_tokens = request.usage.prompt_tokens;
  r.cached_prompt_tokens = request.usage.cached_prompt_tokens;
  r.completion_tokens = request.usage.completion_tokens;
  r.cost_usd = request.cost_usd;
  r.finish_reason = ReasonLabel(request.reason);
  r.status_code = std::string(request.status_code);
  r.queue_ms = absl::ToDoubleMilliseconds(request.timings.queue_wait);
  r.ttft_ms = absl::ToDoubleMilliseconds(request.timings.time_to_first_token);
  r.total_ms = absl::ToDoubleMilliseconds(request.timings.total);
  return r;
}

}  // namespace phi3::service
