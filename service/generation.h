// One generation request between a transport (a gRPC stream, an HTTP
// response) and the engine, whatever the transport.
//
// The engine's TokenSink events append to a pending GenerateResponse; the
// transport takes what has accumulated with Take() whenever it can send
// (after a write completes, or when Notify says there is something new), so
// a slow client gets fewer, larger messages. Tokens that pile up beyond
// max_buffered_tokens cancel the request (ResourceExhausted).
//
// Created by GenerationService::Start, which also records the request's end
// (metrics, usage ledger: service/generation_service.h); a transport only
// sends what it takes. The last chunk is available only once the ledger has
// stored the request's record, so a client that saw the end of its request
// is in the ledger even if the server dies right after.
//
// Thread safety: all public methods may be called from any thread.
#ifndef PHI3_SERVICE_GENERATION_H_
#define PHI3_SERVICE_GENERATION_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "proto/phi3/v1/phi3.pb.h"
#include "service/auth.h"
#include "service/tenant_limiter.h"

namespace phi3::service {

class GenerationService;

class Generation : public std::enable_shared_from_this<Generation> {
 public:
  // Called with no lock held (on the engine's or the ledger's thread) after
  // new output became available to Take(). Must not block.
  using Notify = std::function<void()>;

  // What the transport knows of the call.
  struct Call {
    Caller caller;                                 // from GenerationService::Admit
    std::string api;                               // "grpc", "http": for the ledger
    absl::Time deadline = absl::InfiniteFuture();  // the client's
  };

  struct Chunk {
    // Text, token ids and logprobs produced since the previous chunk; the
    // last chunk also has finish_reason, usage, cost_usd and timings.
    v1::GenerateResponse message;
    bool last = false;
    // With `last`: OK, or how the request ended (Cancelled, DeadlineExceeded,
    // ResourceExhausted for a client too slow, Unavailable at shutdown, the
    // engine's error). When not OK the message should not be sent.
    absl::Status status;
  };

  // Everything produced since the previous call, or nullopt when nothing is
  // new (or the last chunk was already taken).
  std::optional<Chunk> Take();

  // The client went away (at its deadline, that is the deadline): the engine
  // stops the request within a step; its end is still recorded (tokens
  // produced so far are billed).
  void ClientGone();
  // Shutdown: the request ends with Unavailable.
  void CancelFromServer();
  // The client read nothing for `idle`: the request ends Cancelled, saying so.
  void CancelIdle(absl::Duration idle);

  const std::string& tenant() const { return call_.caller.tenant; }
  bool prefill_only() const { return prefill_only_; }
  // Random, 32 hex digits: the ledger's key, also given to the client.
  const std::string& request_id() const { return request_id_; }

  // Use GenerationService::Start. Keeps what it needs of `request`.
  // `slot` (the tenant's stream) is held until the Generation is released.
  Generation(GenerationService* service, const GenerateRequest& request, Call call,
             TenantLimiter::StreamSlot slot, Notify notify);
  ~Generation();
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

 private:
  friend class GenerationService;
  class Sink;

  // Engine events (on the engine thread).
  bool HandleToken(const TokenEvent& event);
  void HandleFinish(const FinishEvent& event);
  // After a successful Submit: the id to cancel with.
  void Submitted(RequestId id);
  // The ledger stored the record (or there is none): the last chunk may go.
  void Stored();
  absl::Status FinalStatus(FinishReason reason, const absl::Status& engine_status) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks the engine to stop the request if it was submitted and not finished.
  void CancelLocked(bool* cancel, RequestId* id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  GenerationService* const service_;
  const Call call_;
  const std::string request_id_;
  const bool want_logprobs_;
  const bool prefill_only_;
  TenantLimiter::StreamSlot slot_;
  const Notify notify_;

  mutable absl::Mutex mu_;
  bool submitted_ ABSL_GUARDED_BY(mu_) = false;
  RequestId engine_id_ ABSL_GUARDED_BY(mu_) = 0;
  v1::GenerateResponse pending_ ABSL_GUARDED_BY(mu_);
  int pending_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  bool client_gone_ ABSL_GUARDED_BY(mu_) = false;
  bool overflow_ ABSL_GUARDED_BY(mu_) = false;
  bool server_cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration idle_cancelled_after_ ABSL_GUARDED_BY(mu_);  // zero: not idle-cancelled
  bool finished_ ABSL_GUARDED_BY(mu_) = false;       // the engine's OnFinish arrived
  bool stored_ ABSL_GUARDED_BY(mu_) = false;         // its ledger record is durable
  bool deadline_passed_ ABSL_GUARDED_BY(mu_) = false;  // the client left at its deadline
  bool last_taken_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Time> last_token_time_ ABSL_GUARDED_BY(mu_);
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_GENERATION_H_
