// The phi3.v1.Phi3 gRPC service on the callback API.
//
// Each Generate/Chat call is one GenerateStream reactor (generate_stream.h)
// that submits to the Engine and streams what the engine's TokenSink events
// deliver; no RPC thread ever waits for the engine. Tokenize and GetModelInfo
// answer inline. A call is admitted in this order: draining?, API key, the
// tenant's limits (TenantLimiter), then the request is converted (sizes
// checked before tokenizing) and submitted.
//
// One watchdog thread cancels streams whose client has read nothing for
// stream_idle_timeout (a write still in flight), so every stream ends.
//
// Thread safety: all public methods may be called from any thread.
#ifndef PHI3_SERVICE_PHI3_SERVICE_H_
#define PHI3_SERVICE_PHI3_SERVICE_H_

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include "absl/strings/string_view.h"

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "proto/phi3/v1/phi3.grpc.pb.h"
#include "service/auth.h"
#include "service/metrics.h"
#include "service/ledger/usage_ledger.h"
#include "service/request_convert.h"
#include "service/tenant_limiter.h"

namespace phi3::service {

class GenerateStream;

struct ServiceOptions {
  RequestLimits limits;
  // Tokens a stream may hold while its client is not reading; beyond this the
  // request is cancelled and the call ends with RESOURCE_EXHAUSTED.
  int max_buffered_tokens = 1024;
  // A stream whose client has read nothing for this long (one write pending
  // all along) is cancelled; InfiniteDuration() = never.
  absl::Duration stream_idle_timeout = absl::Seconds(30);
  // Prefix-cache partition per tenant or share group (auth.h CacheScopeOf);
  // false = one cache shared by all tenants.
  bool isolate_tenants = true;
  // Per-tenant stream and token limits; nullptr = none. Not owned; must
  // outlive the service.
  TenantLimiter* limiter = nullptr;
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
  // The caller, or the status to end the call with.
  absl::StatusOr<Caller> Admit(grpc::CallbackServerContext* context) const;
  // Admits a Generate/Chat call and returns its reactor; `convert` builds
  // the engine request once the caller is known and within its limits.
  GenerateStream* OpenStream(
      grpc::CallbackServerContext* context,
      absl::FunctionRef<absl::StatusOr<GenerateRequest>(const Caller&)> convert);
  void StreamStarted(GenerateStream* stream);
  // Returns whether the caller (OnDone) may delete `stream` now; if not, the
  // watchdog holds it and deletes it.
  bool StreamDone(GenerateStream* stream);
  void WatchIdleStreams();

  Engine* const engine_;
  const Authenticator* const auth_;
  ServiceMetrics* const metrics_;
  const ServiceOptions options_;
  std::atomic<bool> draining_{false};

  mutable absl::Mutex mu_;
  absl::flat_hash_set<GenerateStream*> streams_ ABSL_GUARDED_BY(mu_);
  // Streams the watchdog is cancelling outside mu_, and those of them whose
  // OnDone already ran (the watchdog deletes them).
  absl::flat_hash_set<GenerateStream*> pinned_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<GenerateStream*> done_while_pinned_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watchdog_;
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_PHI3_SERVICE_H_
