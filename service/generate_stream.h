// One Generate or Chat call: a gRPC write reactor that sends what its
// Generation (service/generation.h) produces.
//
// The last message's usage also goes into the trailers (phi3-usage-bin, with
// phi3-request-id), where it still arrives when the call ends with an error.
//
// The service's watchdog may cancel a stream whose write has waited for the
// client longer than stream_idle_timeout (CancelIfIdle); it pins the reactor
// while doing so, and deletes it itself if OnDone ran meanwhile.
//
// Invariants: at most one write is in flight; whoever starts a write or the
// Finish (decided under state_->mu) is the only one to touch the reactor
// until that operation completes, so the engine thread never touches a
// reactor that another thread may be finishing. Finish() is called exactly
// once, after the generation's last chunk (or at once when the request never
// reached the engine); OnDone deletes the reactor.
#ifndef PHI3_SERVICE_GENERATE_STREAM_H_
#define PHI3_SERVICE_GENERATE_STREAM_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/phi3/v1/phi3.pb.h"
#include "service/generation.h"

namespace phi3::service {

class Phi3Service;

class GenerateStream final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  // Starts the generation with `start` (given the notify callback), or
  // finishes at once with its error.
  using Starter =
      std::function<absl::StatusOr<std::shared_ptr<Generation>>(Generation::Notify notify)>;
  // `context` must stay valid until OnDone; `service` outlives the stream.
  GenerateStream(Phi3Service* service, grpc::CallbackServerContext* context,
                 const Starter& start);

  // Shared by the reactor, the generation's notify and the watchdog.
  struct State;
  // Cancels the call when a write has been waiting since before now - idle.
  static void CancelIfIdle(const std::shared_ptr<State>& state, absl::Time now,
                           absl::Duration idle);

 private:
  // Takes the generation's output and starts the next write or the Finish if
  // nothing is in flight. Safe from any thread, also after OnDone.
  static void Pump(const std::shared_ptr<State>& state);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  Phi3Service* const service_;
  grpc::CallbackServerContext* const context_;
  const std::shared_ptr<State> state_;
  v1::GenerateResponse write_msg_;  // owned by the write in flight
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_GENERATE_STREAM_H_
