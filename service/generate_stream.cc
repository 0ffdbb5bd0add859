#include "service/generate_stream.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/phi3_service.h"
#include "service/status_util.h"

namespace phi3::service {
namespace {

// Holds the stream for the engine. The stream outlives every event the engine
// delivers (it finishes only after OnFinish), so a raw pointer suffices.
class StreamSink final : public TokenSink {
 public:
  explicit StreamSink(GenerateStream* stream) : stream_(stream) {}
  bool OnToken(const TokenEvent& event) override { return stream_->HandleToken(event); }
  void OnFinish(const FinishEvent& event) override { stream_->HandleFinish(event); }

 private:
  GenerateStream* const stream_;
};

absl::Time DeadlineOf(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

}  // namespace

GenerateStream::GenerateStream(Phi3Service* service, grpc::CallbackServerContext* context,
                               absl::StatusOr<GenerateRequest> request, std::string tenant,
                               std::string key_id, TenantLimiter::StreamSlot slot)
    : service_(service),
      context_(context),
      tenant_(std::move(tenant)),
      key_id_(std::move(key_id)),
      want_logprobs_(request.ok() && request->sampling.logprobs),
      prefill_only_(request.ok() && request->prefill_only),
      deadline_(DeadlineOf(context)),
      slot_(std::move(slot)) {
  const std::shared_ptr<absl::Mutex> mu = mu_;
  service_->StreamStarted(this);
  if (!request.ok()) {
    service_->metrics_->RecordRejected(tenant_, GrpcCodeName(ToGrpcStatus(request.status()).error_code()));
    {
      absl::MutexLock lock(mu.get());
      finish_started_ = true;
    }
    Finish(ToGrpcStatus(request.status()));
    return;
  }
  request->deadline = EngineDeadline(deadline_);
  // Not under mu_: the engine may hold its own lock while it delivers events,
  // and events may arrive before Submit returns (they do not need the id).
  absl::StatusOr<RequestId> id =
      service_->engine_->Submit(*std::move(request), std::make_shared<StreamSink>(this));
  if (!id.ok()) {
    const grpc::Status status = ToGrpcStatus(id.status());
    service_->metrics_->RecordRejected(tenant_, GrpcCodeName(status.error_code()));
    {
      absl::MutexLock lock(mu.get());
      finish_started_ = true;
    }
    Finish(status);
    return;
  }
  // OnCancel cannot run before the handler returns this reactor, so the id is
  // set before anyone needs it to cancel.
  absl::MutexLock lock(mu.get());
  submitted_ = true;
  request_id_ = *id;
}

bool GenerateStream::HandleToken(const TokenEvent& event) {
  const std::shared_ptr<absl::Mutex> mu = mu_;  // outlives a concurrent OnDone
  Action action;
  {
    absl::MutexLock lock(mu.get());
    if (client_gone_ || overflow_ || server_cancelled_) return false;
    const absl::Time now = absl::Now();
    if (last_token_time_.has_value()) service_->metrics_->ObserveInterToken(now - *last_token_time_);
    last_token_time_ = now;
    pending_.mutable_text()->append(event.text_delta);
    pending_.add_token_ids(event.token_id);
    if (want_logprobs_) AppendLogprobs(event, &pending_);
    if (++pending_tokens_ > service_->options_.max_buffered_tokens) {
      overflow_ = true;
      return false;
    }
    action = NextAction();
  }
  if (action != Action::kNone) Perform(action);
  return true;
}

grpc::Status GenerateStream::FinalStatus(FinishReason reason,
                                         const absl::Status& engine_status) const {
  if (idle_cancelled_after_ > absl::ZeroDuration()) {
    return grpc::Status(grpc::StatusCode::CANCELLED,
                        absl::StrCat("stream cancelled: the client read nothing for ",
                                     absl::FormatDuration(idle_cancelled_after_)));
  }
  if (server_cancelled_) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down");
  }
  if (overflow_) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("client too slow: more than ",
                                     service_->options_.max_buffered_tokens,
                                     " tokens waiting to be sent"));
  }
  switch (reason) {
    case FinishReason::kCancelled:
      return grpc::Status(grpc::StatusCode::CANCELLED, "request cancelled");
    case FinishReason::kDeadline:
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded");
    case FinishReason::kError:
      if (engine_status.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "engine error");
      return ToGrpcStatus(engine_status);
    default:
      return grpc::Status::OK;
  }
}

void GenerateStream::HandleFinish(const FinishEvent& event) {
  const std::shared_ptr<absl::Mutex> mu = mu_;  // outlives a concurrent OnDone
  FinishedRequest finished;
  {
    absl::MutexLock lock(mu.get());
    finished_ = true;
    finished.reason = ReportedReason(event.reason, deadline_passed_);
    final_status_ = FinalStatus(finished.reason, event.status);
    finished.status_code = GrpcCodeName(final_status_.error_code());
    finished.cost_usd = service_->metrics_->prices().Cost(event.usage);
    service_->metrics_->RecordFinish(tenant_, finished.reason, finished.status_code, event.usage,
                                     event.timings);
    if (prefill_only_) service_->metrics_->RecordPrefill(tenant_);
    pending_.mutable_text()->append(event.text_tail);
    pending_.set_finish_reason(ToProto(finished.reason));
    ToProto(event.usage, pending_.mutable_usage());
    pending_.set_cost_usd(finished.cost_usd);
    ToProto(event.timings, pending_.mutable_timings());
    if (service_->options_.limiter != nullptr) {
      service_->options_.limiter->Charge(
          tenant_, int64_t{event.usage.prompt_tokens} + event.usage.completion_tokens);
    }
    // The client may not get the final message (error status, or gone):
    // the usage goes into the trailers too, where it can still arrive.
    v1::GenerateResponse summary;
    summary.set_finish_reason(pending_.finish_reason());
    *summary.mutable_usage() = pending_.usage();
    summary.set_cost_usd(pending_.cost_usd());
    *summary.mutable_timings() = pending_.timings();
    context_->AddTrailingMetadata("phi3-request-id", request_id_text_);
    context_->AddTrailingMetadata("phi3-usage-bin", summary.SerializeAsString());
  }
  ledger::UsageLedger* ledger = service_->options_.usage_ledger;
  if (ledger == nullptr) {
    HandleStored();
    return;
  }
  finished.request_id = request_id_text_;
  finished.tenant = tenant_;
  finished.key_id = key_id_;
  finished.api = "grpc";
  finished.usage = event.usage;
  finished.timings = event.timings;
  // Not under mu_: the callback may run at once (queue full) and takes it.
  ledger->Record(ToUsageRecord(finished, service_->engine_->Info().file_sha256, absl::Now()),
                 [this] { HandleStored(); });
}

void GenerateStream::HandleStored() {
  const std::shared_ptr<absl::Mutex> mu = mu_;  // outlives a concurrent OnDone
  Action action;
  {
    absl::MutexLock lock(mu.get());
    stored_ = true;
    action = NextAction();
  }
  if (action != Action::kNone) Perform(action);
}

GenerateStream::Action GenerateStream::NextAction() {
  if (finish_started_ || write_in_flight_) return Action::kNone;
  if (finished_) {
    if (!stored_) return Action::kNone;  // the final message waits for the ledger
    finish_started_ = true;
    if (!final_status_.ok() || client_gone_) return Action::kFinish;
    write_msg_ = std::move(pending_);
    pending_.Clear();
    write_in_flight_ = true;
    write_started_ = absl::Now();
    return Action::kWriteAndFinish;
  }
  if (pending_tokens_ == 0 || client_gone_) return Action::kNone;
  write_msg_ = std::move(pending_);
  pending_.Clear();
  pending_tokens_ = 0;
  write_in_flight_ = true;
  write_started_ = absl::Now();
  return Action::kWrite;
}

void GenerateStream::Perform(Action action) {
  // kNone must not even read `this`: another thread may be finishing it.
  switch (action) {
    case Action::kNone:
      return;
    case Action::kWrite:
      StartWrite(&write_msg_);
      return;
    case Action::kWriteAndFinish:
      StartWriteAndFinish(&write_msg_, grpc::WriteOptions(), grpc::Status::OK);
      return;
    case Action::kFinish: {
      const std::shared_ptr<absl::Mutex> mu = mu_;
      grpc::Status status;
      {
        absl::MutexLock lock(mu.get());
        status = final_status_;
      }
      if (status.ok()) status = grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      Finish(status);
      return;
    }
  }
}

void GenerateStream::OnWriteDone(bool ok) {
  const std::shared_ptr<absl::Mutex> mu = mu_;  // outlives a concurrent OnDone
  Action action;
  bool cancel = false;
  RequestId id = 0;
  {
    absl::MutexLock lock(mu.get());
    write_in_flight_ = false;
    if (!ok && !client_gone_) {
      client_gone_ = true;
      cancel = submitted_ && !finished_;
      id = request_id_;
    }
    action = NextAction();
  }
  if (cancel) service_->engine_->Cancel(id);
  if (action != Action::kNone) Perform(action);
}

void GenerateStream::OnCancel() {
  const std::shared_ptr<absl::Mutex> mu = mu_;  // outlives a concurrent OnDone
  RequestId id = 0;
  bool cancel = false;
  {
    absl::MutexLock lock(mu.get());
    client_gone_ = true;
    // gRPC gives no reason; a cancel at the deadline is the deadline (gRPC's
    // timer and absl::Now() may disagree by a little).
    deadline_passed_ = absl::Now() + absl::Milliseconds(5) >= deadline_;
    cancel = submitted_ && !finished_;
    id = request_id_;
  }
  if (cancel) service_->engine_->Cancel(id);
}

void GenerateStream::CancelFromServer() {
  const std::shared_ptr<absl::Mutex> mu = mu_;  // outlives a concurrent OnDone
  RequestId id = 0;
  bool cancel = false;
  {
    absl::MutexLock lock(mu.get());
    if (finished_) return;
    server_cancelled_ = true;
    cancel = submitted_;
    id = request_id_;
  }
  if (cancel) service_->engine_->Cancel(id);
}

std::optional<absl::Time> GenerateStream::StalledWriteSince() const {
  absl::MutexLock lock(mu_.get());
  if (!write_in_flight_ || idle_cancelled_after_ > absl::ZeroDuration()) return std::nullopt;
  return write_started_;
}

void GenerateStream::CancelIdle(absl::Duration idle) {
  RequestId id = 0;
  bool cancel = false;
  {
    absl::MutexLock lock(mu_.get());
    idle_cancelled_after_ = idle;
    client_gone_ = true;
    cancel = submitted_ && !finished_;
    id = request_id_;
  }
  if (cancel) service_->engine_->Cancel(id);
  // The pending write then completes with ok = false and the call ends.
  context_->TryCancel();
}

void GenerateStream::OnDone() {
  slot_.Release();
  if (service_->StreamDone(this)) delete this;
}

}  // namespace phi3::service
