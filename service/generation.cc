#include "service/generation.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "service/accounting.h"
#include "service/generation_service.h"
#include "service/status_util.h"

namespace phi3::service {

Generation::Generation(GenerationService* service, const GenerateRequest& request, Call call,
                       TenantLimiter::StreamSlot slot, Notify notify)
    : service_(service),
      call_(std::move(call)),
      request_id_(NewRequestId()),
      want_logprobs_(request.sampling.logprobs),
      prefill_only_(request.prefill_only),
      slot_(std::move(slot)),
      notify_(std::move(notify)) {}

Generation::~Generation() {
  slot_.Release();  // before Released(): whoever sees the request gone sees its slot free
  service_->Released(this);
}

void Generation::Submitted(RequestId id) {
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    submitted_ = true;
    engine_id_ = id;
    // A cancel that came while Submit ran could not name the request.
    cancel = (client_gone_ || server_cancelled_) && !finished_;
  }
  if (cancel) service_->engine().Cancel(id);
}

std::optional<Generation::Chunk> Generation::Take() {
  absl::MutexLock lock(&mu_);
  if (last_taken_ || (finished_ && !stored_) || (pending_tokens_ == 0 && !finished_)) {
    return std::nullopt;
  }
  Chunk chunk;
  chunk.message = std::move(pending_);
  pending_.Clear();
  pending_tokens_ = 0;
  if (finished_) {
    chunk.last = true;
    chunk.status = final_status_;
    last_taken_ = true;
  }
  return chunk;
}

void Generation::CancelLocked(bool* cancel, RequestId* id) const {
  *cancel = submitted_ && !finished_;
  *id = engine_id_;
}

void Generation::ClientGone() {
  bool cancel = false;
  RequestId id = 0;
  {
    absl::MutexLock lock(&mu_);
    if (client_gone_) return;
    client_gone_ = true;
    // Transports give no reason; a client leaving at its deadline (give or
    // take clock differences) is the deadline.
    deadline_passed_ = absl::Now() + absl::Milliseconds(5) >= call_.deadline;
    CancelLocked(&cancel, &id);
  }
  if (cancel) service_->engine().Cancel(id);
}

void Generation::CancelFromServer() {
  bool cancel = false;
  RequestId id = 0;
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    server_cancelled_ = true;
    CancelLocked(&cancel, &id);
  }
  if (cancel) service_->engine().Cancel(id);
}

void Generation::CancelIdle(absl::Duration idle) {
  bool cancel = false;
  RequestId id = 0;
  {
    absl::MutexLock lock(&mu_);
    idle_cancelled_after_ = idle;
    client_gone_ = true;
    CancelLocked(&cancel, &id);
  }
  if (cancel) service_->engine().Cancel(id);
}

bool Generation::HandleToken(const TokenEvent& event) {
  {
    absl::MutexLock lock(&mu_);
    if (client_gone_ || overflow_ || server_cancelled_) return false;
    const absl::Time now = absl::Now();
    if (last_token_time_.has_value()) {
      service_->metrics().ObserveInterToken(now - *last_token_time_);
    }
    last_token_time_ = now;
    pending_.mutable_text()->append(event.text_delta);
    pending_.add_token_ids(event.token_id);
    if (want_logprobs_) AppendLogprobs(event, &pending_);
    if (++pending_tokens_ > service_->options().max_buffered_tokens) {
      overflow_ = true;
      return false;
    }
  }
  if (notify_) notify_();
  return true;
}

absl::Status Generation::FinalStatus(FinishReason reason,
                                     const absl::Status& engine_status) const {
  if (idle_cancelled_after_ > absl::ZeroDuration()) {
    return absl::CancelledError(absl::StrCat("stream cancelled: the client read nothing for ",
                                             absl::FormatDuration(idle_cancelled_after_)));
  }
  if (server_cancelled_) return absl::UnavailableError("server shutting down");
  if (overflow_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("client too slow: more than ", service_->options().max_buffered_tokens,
                     " tokens waiting to be sent"));
  }
  switch (reason) {
    case FinishReason::kCancelled:
      return absl::CancelledError("request cancelled");
    case FinishReason::kDeadline:
      return absl::DeadlineExceededError("deadline exceeded");
    case FinishReason::kError:
      return engine_status.ok() ? absl::InternalError("engine error") : engine_status;
    default:
      return absl::OkStatus();
  }
}

void Generation::HandleFinish(const FinishEvent& event) {
  FinishedRequest finished;
  {
    absl::MutexLock lock(&mu_);
    finished.reason = ReportedReason(event.reason, deadline_passed_);
    final_status_ = FinalStatus(finished.reason, event.status);
    finished.status_code = GrpcCodeName(ToGrpcStatus(final_status_).error_code());
    finished.cost_usd = service_->metrics().prices().Cost(event.usage);
    pending_.mutable_text()->append(event.text_tail);
    pending_.set_finish_reason(ToProto(finished.reason));
    ToProto(event.usage, pending_.mutable_usage());
    pending_.set_cost_usd(finished.cost_usd);
    ToProto(event.timings, pending_.mutable_timings());
    finished_ = true;
  }
  finished.request_id = request_id_;
  finished.tenant = call_.caller.tenant;
  finished.key_id = call_.caller.key_id;
  finished.api = call_.api;
  finished.usage = event.usage;
  finished.timings = event.timings;
  // Not under mu_: Stored() may run at once.
  service_->Finished(shared_from_this(), finished);
}

void Generation::Stored() {
  {
    absl::MutexLock lock(&mu_);
    stored_ = true;
  }
  if (notify_) notify_();
}

}  // namespace phi3::service
