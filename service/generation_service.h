// The transport-neutral half of the service, shared by the gRPC API
// (phi3_service.h) and the OpenAI-compatible HTTP API (http_server.h):
// admission (draining, API key -> tenant), request conversion and
// validation, submission to the engine, and the one place where every
// request's end is recorded (metrics, cost).
//
// Thread safety: all public methods may be called from any thread.
#ifndef PHI3_SERVICE_GENERATION_SERVICE_H_
#define PHI3_SERVICE_GENERATION_SERVICE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "proto/phi3/v1/phi3.pb.h"
#include "service/accounting.h"
#include "service/auth.h"
#include "service/generation.h"
#include "service/ledger/usage_ledger.h"
#include "service/metrics.h"
#include "service/request_convert.h"
#include "service/tenant_limiter.h"

namespace phi3::service {

struct ServiceOptions {
  RequestLimits limits;
  // Tokens a request may hold while its client is not reading; beyond this the
  // request is cancelled and ends with ResourceExhausted.
  int max_buffered_tokens = 1024;
  // A gRPC stream whose client has read nothing for this long (one write
  // pending all along) is cancelled; InfiniteDuration() = never.
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
  std::string server_version;   // "0.1.0"
  std::string server_revision;  // git revision of the build
};

class GenerationService {
 public:
  // `engine`, `auth` and `metrics` (and options.usage_ledger) must outlive the
  // service.
  GenerationService(Engine* engine, const Authenticator* auth, ServiceMetrics* metrics,
                    ServiceOptions options);
  // Waits until every Generation it started is released (by the transport,
  // the engine and the ledger).
  ~GenerationService();

  // The caller from a call's authorization value ("Bearer KEY"), or
  // Unavailable while draining, or Unauthenticated. Records nothing.
  absl::StatusOr<Caller> Admit(std::optional<absl::string_view> authorization) const;

  // Converts, validates and submits a request of `call.tenant`. On error (invalid
  // request, queue full) the rejection is recorded and returned; otherwise
  // `notify` is called as output arrives (possibly before this returns).
  absl::StatusOr<std::shared_ptr<Generation>> Start(const Generation::Call& call,
                                                    const v1::GenerateRequest& request,
                                                    Generation::Notify notify);
  absl::StatusOr<std::shared_ptr<Generation>> Start(const Generation::Call& call,
                                                    const v1::ChatRequest& request,
                                                    Generation::Notify notify);

  // Records a request refused before it reached the engine (by Admit, or by
  // a transport's own checks). `tenant` may be a placeholder such as
  // "unauthenticated".
  void Reject(absl::string_view tenant, const absl::Status& status);

  // Graceful shutdown: after StartDrain() Admit refuses new calls while
  // requests in flight continue. WaitUntilIdle returns true once none remain,
  // false on timeout. CancelAll stops the remaining ones (Unavailable).
  void StartDrain();
  bool draining() const { return draining_.load(); }
  bool WaitUntilIdle(absl::Duration timeout);
  void CancelAll();
  // Requests started and not yet released by both the engine and the transport.
  int num_active() const;

  Engine& engine() const { return *engine_; }
  ServiceMetrics& metrics() const { return *metrics_; }
  const ServiceOptions& options() const { return options_; }

 private:
  friend class Generation;
  // The caller's stream slot, or the status to reject the call with.
  absl::StatusOr<TenantLimiter::StreamSlot> AdmitLimits(const Caller& caller);
  absl::StatusOr<std::shared_ptr<Generation>> Submit(const Generation::Call& call,
                                                     absl::StatusOr<GenerateRequest> request,
                                                     TenantLimiter::StreamSlot slot,
                                                     Generation::Notify notify);
  // The one place where a request the engine finished is recorded: metrics,
  // then the usage ledger, which calls generation->Stored() when durable.
  void Finished(const std::shared_ptr<Generation>& generation,
                const FinishedRequest& finished);
  void Released(Generation* generation);

  Engine* const engine_;
  const Authenticator* const auth_;
  ServiceMetrics* const metrics_;
  const ServiceOptions options_;
  std::atomic<bool> draining_{false};

  mutable absl::Mutex mu_;
  absl::flat_hash_map<Generation*, std::weak_ptr<Generation>> active_ ABSL_GUARDED_BY(mu_);
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_GENERATION_SERVICE_H_
