#include "service/generate_stream.h"

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "service/phi3_service.h"
#include "service/status_util.h"

namespace phi3::service {

// Outlives the reactor while the engine thread may still notify.
struct GenerateStream::State {
  absl::Mutex mu;
  GenerateStream* reactor ABSL_GUARDED_BY(mu) = nullptr;  // null after OnDone
  std::shared_ptr<Generation> generation ABSL_GUARDED_BY(mu);
  bool write_in_flight ABSL_GUARDED_BY(mu) = false;
  absl::Time write_started ABSL_GUARDED_BY(mu);
  bool finish_started ABSL_GUARDED_BY(mu) = false;
  bool pinned ABSL_GUARDED_BY(mu) = false;             // the watchdog is cancelling it
  bool done_while_pinned ABSL_GUARDED_BY(mu) = false;  // then the watchdog deletes it
};

GenerateStream::GenerateStream(Phi3Service* service, grpc::CallbackServerContext* context,
                               const Starter& start)
    : service_(service), context_(context), state_(std::make_shared<State>()) {
  {
    absl::MutexLock lock(&state_->mu);
    state_->reactor = this;
  }
  service_->StreamOpened(state_);
  std::weak_ptr<State> weak = state_;
  absl::StatusOr<std::shared_ptr<Generation>> generation = start([weak] {
    if (std::shared_ptr<State> state = weak.lock()) Pump(state);
  });
  if (!generation.ok()) {
    {
      absl::MutexLock lock(&state_->mu);
      state_->finish_started = true;
    }
    Finish(ToGrpcStatus(generation.status()));
    return;
  }
  {
    absl::MutexLock lock(&state_->mu);
    state_->generation = *std::move(generation);
  }
  Pump(state_);  // output that arrived before the generation was stored
}

void GenerateStream::Pump(const std::shared_ptr<State>& state) {
  enum class Action { kWrite, kWriteAndFinish, kFinish };
  Action action;
  GenerateStream* reactor;
  grpc::Status status;
  {
    absl::MutexLock lock(&state->mu);
    if (state->reactor == nullptr || state->generation == nullptr || state->write_in_flight ||
        state->finish_started) {
      return;
    }
    std::optional<Generation::Chunk> chunk = state->generation->Take();
    if (!chunk.has_value()) return;
    reactor = state->reactor;
    if (chunk->last) {
      state->finish_started = true;
      // The usage in the trailers too: they arrive even after an error status.
      const v1::GenerateResponse& m = chunk->message;
      v1::GenerateResponse summary;
      summary.set_finish_reason(m.finish_reason());
      *summary.mutable_usage() = m.usage();
      summary.set_cost_usd(m.cost_usd());
      *summary.mutable_timings() = m.timings();
      reactor->context_->AddTrailingMetadata("phi3-request-id",
                                             state->generation->request_id());
      reactor->context_->AddTrailingMetadata("phi3-usage-bin", summary.SerializeAsString());
      status = ToGrpcStatus(chunk->status);
      action = status.ok() ? Action::kWriteAndFinish : Action::kFinish;
    } else {
      action = Action::kWrite;
    }
    if (action != Action::kFinish) {
      state->write_in_flight = true;
      state->write_started = absl::Now();
      reactor->write_msg_ = std::move(chunk->message);
    }
  }
  // Outside the lock: gRPC may run OnWriteDone on this thread.
  switch (action) {
    case Action::kWrite:
      reactor->StartWrite(&reactor->write_msg_);
      return;
    case Action::kWriteAndFinish:
      reactor->StartWriteAndFinish(&reactor->write_msg_, grpc::WriteOptions(), status);
      return;
    case Action::kFinish:
      reactor->Finish(status);
      return;
  }
}

void GenerateStream::OnWriteDone(bool ok) {
  std::shared_ptr<Generation> generation;
  {
    absl::MutexLock lock(&state_->mu);
    state_->write_in_flight = false;
    generation = state_->generation;
  }
  if (!ok) generation->ClientGone();
  Pump(state_);
}

void GenerateStream::OnCancel() {
  std::shared_ptr<Generation> generation;
  {
    absl::MutexLock lock(&state_->mu);
    generation = state_->generation;
  }
  if (generation != nullptr) generation->ClientGone();
}

void GenerateStream::CancelIfIdle(const std::shared_ptr<State>& state, absl::Time now,
                                  absl::Duration idle) {
  GenerateStream* reactor;
  std::shared_ptr<Generation> generation;
  {
    absl::MutexLock lock(&state->mu);
    if (state->reactor == nullptr || state->generation == nullptr || !state->write_in_flight ||
        state->pinned || now - state->write_started < idle) {
      return;
    }
    state->pinned = true;
    reactor = state->reactor;
    generation = state->generation;
  }
  generation->CancelIdle(idle);
  // The pending write then completes with ok = false and the call ends.
  reactor->context_->TryCancel();
  bool done;
  {
    absl::MutexLock lock(&state->mu);
    state->pinned = false;
    done = state->done_while_pinned;
  }
  if (done) delete reactor;
}

void GenerateStream::OnDone() {
  service_->StreamClosed(state_.get());
  bool pinned;
  {
    absl::MutexLock lock(&state_->mu);
    state_->reactor = nullptr;
    state_->generation.reset();
    pinned = state_->pinned;
    state_->done_while_pinned = pinned;
  }
  if (!pinned) delete this;
}

}  // namespace phi3::service
