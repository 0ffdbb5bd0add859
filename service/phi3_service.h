// The phi3.v1.Phi3 gRPC service on the callback API.
//
// Each Generate/Chat call is one GenerateStream reactor (generate_stream.h)
// that submits to the Engine and streams what the engine's TokenSink events
// deliver; no RPC thread ever waits for the engine. Tokenize and GetModelInfo
// answer inline.
//
// Thread safety: all public methods may be called from any thread.
#ifndef PHI3_SERVICE_PHI3_SERVICE_H_
#define PHI3_SERVICE_PHI3_SERVICE_H_

#include <atomic>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "proto/phi3/v1/phi3.grpc.pb.h"
#include "service/auth.h"
#include "service/metrics.h"
#include "service/ledger/usage_ledger.h"
#include "service/request_convert.h"

namespace phi3::service {

class GenerateStream;

struct ServiceOptions {
  RequestLimits limits;
  // Tokens a stream may hold while its client is not reading; beyond this the
  // request is cancelled and the call ends with RESOURCE_EXHAUSTED.
  int max_buffered_tokens = 1024;
  // Where every request the engine ran is recorded; null = no ledger. Not
  // owned; must outlive the service.
  ledger::UsageLedger* usage_ledger = nullptr;
  // Reported by GetModelInfo.
  EngineOptions engine_options;
  std::string server_version = "0.1.0";
};

class Phi3Service final : public v1::Phi3::CallbackService {
 public:
  // `engine`, `auth` and `metrics` must outlive the service.
  Phi3Service(Engine* engine, const Authenticator* auth, ServiceMetrics* metrics,
              ServiceOptions options);
  ~Phi3Service() override;

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerWriteReactor<v1::GenerateResponse>* Chat(
      grpc::CallbackServerContext* context, const v1::ChatRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::GetModelInfoResponse* response) override;

  // Graceful shutdown: after StartDrain() new calls get UNAVAILABLE while
  // streams in flight continue. WaitUntilIdle returns true once none remain,
  // false on timeout. CancelAll stops the remaining ones (they end UNAVAILABLE).
  void StartDrain();
  bool draining() const { return draining_.load(); }
  bool WaitUntilIdle(absl::Duration timeout);
  void CancelAll();
  int num_active_streams() const;

 private:
  friend class GenerateStream;
  // The tenant of the call, or the status to end it with.
  absl::StatusOr<std::string> Admit(grpc::CallbackServerContext* context) const;
  void StreamStarted(GenerateStream* stream);
  void StreamDone(GenerateStream* stream);

  Engine* const engine_;
  const Authenticator* const auth_;
  ServiceMetrics* const metrics_;
  const ServiceOptions options_;
  std::atomic<bool> draining_{false};

  mutable absl::Mutex mu_;
  absl::flat_hash_set<GenerateStream*> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_PHI3_SERVICE_H_
