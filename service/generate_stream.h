// One Generate or Chat call: a gRPC write reactor fed by the engine's
// TokenSink events.
//
// Invariants (all under *mu_): at most one write is in flight; tokens that
// arrive meanwhile accumulate in pending_ and go out as one message when the
// write completes, so a slow client gets fewer, larger messages; beyond
// max_buffered_tokens the request is cancelled. Finish() is called exactly
// once, after the engine's OnFinish and after the usage ledger has stored the
// request's record (or at once when the request never reached the engine), so
// a client that received the end of its call is in the ledger even if the
// server is killed right after; nothing touches the reactor after Finish():
// OnDone hands it to the service to delete. The tenant's stream slot is given
// back in OnDone.
#ifndef PHI3_SERVICE_GENERATE_STREAM_H_
#define PHI3_SERVICE_GENERATE_STREAM_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "grpcpp/grpcpp.h"
#include "proto/phi3/v1/phi3.pb.h"
#include "service/accounting.h"
#include "service/tenant_limiter.h"

namespace phi3::service {

class Phi3Service;

class GenerateStream final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  // Submits `request` (or finishes with its error) and returns; the engine
  // streams from then on. `tenant` labels the metrics and is charged for the
  // tokens; `key_id` (auth.h Caller) goes into the usage ledger; `slot` is
  // held until the call is done.
  GenerateStream(Phi3Service* service, grpc::CallbackServerContext* context,
                 absl::StatusOr<GenerateRequest> request, std::string tenant,
                 std::string key_id = "", TenantLimiter::StreamSlot slot = {});

  // Server-side cancellation (shutdown): the call ends with UNAVAILABLE.
  void CancelFromServer();

  // Since when a write has been waiting for the client, or nullopt when none
  // is (or the stream is already being cancelled as idle).
  std::optional<absl::Time> StalledWriteSince() const;
  // Cancels the call (and its request) because the client read nothing for
  // `idle`. REQUIRES: the stream stays alive during the call (the service
  // pins it).
  void CancelIdle(absl::Duration idle);

  // TokenSink events, on the engine thread.
  bool HandleToken(const TokenEvent& event);
  void HandleFinish(const FinishEvent& event);

 private:
  enum class Action { kNone, kWrite, kWriteAndFinish, kFinish };

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // Decides the next reactor operation; the caller performs it after
  // releasing mu_ (a Finish may delete this object at once).
  Action NextAction() ABSL_EXCLUSIVE_LOCKS_REQUIRED(*mu_);
  void Perform(Action action);
  grpc::Status FinalStatus(FinishReason reason, const absl::Status& engine_status) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(*mu_);
  // The ledger stored the record (or there is no ledger).
  void HandleStored();

  Phi3Service* const service_;
  grpc::CallbackServerContext* const context_;  // valid until OnDone
  const std::string tenant_;
  const std::string key_id_;
  const bool want_logprobs_;
  const bool prefill_only_;
  const std::string request_id_text_ = NewRequestId();  // the ledger's key
  const absl::Time deadline_;                          // the call's
  TenantLimiter::StreamSlot slot_;

  const std::shared_ptr<absl::Mutex> mu_ = std::make_shared<absl::Mutex>();
  bool submitted_ ABSL_GUARDED_BY(*mu_) = false;
  RequestId request_id_ ABSL_GUARDED_BY(*mu_) = 0;
  v1::GenerateResponse pending_ ABSL_GUARDED_BY(*mu_);
  int pending_tokens_ ABSL_GUARDED_BY(*mu_) = 0;
  v1::GenerateResponse write_msg_;  // owned by the write in flight
  bool write_in_flight_ ABSL_GUARDED_BY(*mu_) = false;
  absl::Time write_started_ ABSL_GUARDED_BY(*mu_);
  absl::Duration idle_cancelled_after_ ABSL_GUARDED_BY(*mu_);  // zero: not idle-cancelled
  bool client_gone_ ABSL_GUARDED_BY(*mu_) = false;
  bool overflow_ ABSL_GUARDED_BY(*mu_) = false;
  bool server_cancelled_ ABSL_GUARDED_BY(*mu_) = false;
  bool finish_started_ ABSL_GUARDED_BY(*mu_) = false;
  bool finished_ ABSL_GUARDED_BY(*mu_) = false;   // engine's OnFinish arrived
  bool stored_ ABSL_GUARDED_BY(*mu_) = false;     // its ledger record is durable
  bool deadline_passed_ ABSL_GUARDED_BY(*mu_) = false;  // gRPC cancelled it at its deadline
  grpc::Status final_status_ ABSL_GUARDED_BY(*mu_);
  std::optional<absl::Time> last_token_time_ ABSL_GUARDED_BY(*mu_);
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_GENERATE_STREAM_H_
