#include "service/generation_service.h"

#include <utility>

#include "service/status_util.h"

namespace phi3::service {

// Keeps the generation alive for the engine until its OnFinish.
class Generation::Sink final : public TokenSink {
 public:
  explicit Sink(std::shared_ptr<Generation> generation) : generation_(std::move(generation)) {}
  bool OnToken(const TokenEvent& event) override { return generation_->HandleToken(event); }
  void OnFinish(const FinishEvent& event) override { generation_->HandleFinish(event); }

 private:
  const std::shared_ptr<Generation> generation_;
};

namespace {

absl::string_view CodeName(const absl::Status& status) {
  return GrpcCodeName(ToGrpcStatus(status).error_code());
}

}  // namespace

GenerationService::GenerationService(Engine* engine, const Authenticator* auth,
                                     ServiceMetrics* metrics, ServiceOptions options)
    : engine_(engine), auth_(auth), metrics_(metrics), options_(std::move(options)) {}

GenerationService::~GenerationService() {
  // A Generation calls Released() on destruction, possibly from the engine's
  // or the ledger's thread: wait for the last one.
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return active_.empty(); };
  mu_.Await(absl::Condition(&idle));
}

absl::StatusOr<Caller> GenerationService::Admit(
    std::optional<absl::string_view> authorization) const {
  if (draining_.load()) return absl::UnavailableError("server is shutting down");
  return auth_->Authenticate(authorization);
}

absl::StatusOr<TenantLimiter::StreamSlot> GenerationService::AdmitLimits(const Caller& caller) {
  if (options_.limiter == nullptr) return TenantLimiter::StreamSlot();
  absl::StatusOr<TenantLimiter::StreamSlot> slot = options_.limiter->AdmitStream(caller);
  if (!slot.ok()) Reject(caller.tenant, slot.status());
  return slot;
}

absl::StatusOr<std::shared_ptr<Generation>> GenerationService::Start(
    const Generation::Call& call, const v1::GenerateRequest& request, Generation::Notify notify) {
  absl::StatusOr<TenantLimiter::StreamSlot> slot = AdmitLimits(call.caller);
  if (!slot.ok()) return slot.status();
  return Submit(call, ConvertGenerate(request, *engine_, options_.limits, call.caller.tenant),
                *std::move(slot), std::move(notify));
}

absl::StatusOr<std::shared_ptr<Generation>> GenerationService::Start(
    const Generation::Call& call, const v1::ChatRequest& request, Generation::Notify notify) {
  absl::StatusOr<TenantLimiter::StreamSlot> slot = AdmitLimits(call.caller);
  if (!slot.ok()) return slot.status();
  return Submit(call, ConvertChat(request, *engine_, options_.limits, call.caller.tenant),
                *std::move(slot), std::move(notify));
}

absl::StatusOr<std::shared_ptr<Generation>> GenerationService::Submit(
    const Generation::Call& call, absl::StatusOr<GenerateRequest> request,
    TenantLimiter::StreamSlot slot, Generation::Notify notify) {
  if (!request.ok()) {
    Reject(call.caller.tenant, request.status());
    return request.status();
  }
  request->cache_scope = CacheScopeOf(call.caller, options_.isolate_tenants);
  // A little before the client's, so that the status and the usage reach it.
  request->deadline = EngineDeadline(call.deadline);
  auto generation =
      std::make_shared<Generation>(this, *request, call, std::move(slot), std::move(notify));
  {
    absl::MutexLock lock(&mu_);
    active_.emplace(generation.get(), generation);
  }
  metrics_->AddActiveStreams(1);
  // Events may arrive before Submit returns; they do not need the id.
  absl::StatusOr<RequestId> id =
      engine_->Submit(*std::move(request), std::make_shared<Generation::Sink>(generation));
  if (!id.ok()) {
    Reject(call.caller.tenant, id.status());
    return id.status();
  }
  generation->Submitted(*id);
  return generation;
}

void GenerationService::Reject(absl::string_view tenant, const absl::Status& status) {
  metrics_->RecordRejected(tenant, CodeName(status));
}

void GenerationService::Finished(const std::shared_ptr<Generation>& generation,
                                 const FinishedRequest& finished) {
  metrics_->RecordFinish(finished.tenant, finished.reason, finished.status_code, finished.usage,
                         finished.timings);
  if (generation->prefill_only()) metrics_->RecordPrefill(finished.tenant);
  if (options_.limiter != nullptr) {
    options_.limiter->Charge(finished.tenant, int64_t{finished.usage.prompt_tokens} +
                                                  finished.usage.completion_tokens);
  }
  ledger::UsageLedger* ledger = options_.usage_ledger;
  if (ledger == nullptr) {
    generation->Stored();
    return;
  }
  ledger->Record(ToUsageRecord(finished, engine_->Info().file_sha256, absl::Now()),
                 [generation] { generation->Stored(); });
}

void GenerationService::Released(Generation* generation) {
  metrics_->AddActiveStreams(-1);
  absl::MutexLock lock(&mu_);
  active_.erase(generation);
}

void GenerationService::StartDrain() { draining_.store(true); }

bool GenerationService::WaitUntilIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return active_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

void GenerationService::CancelAll() {
  std::vector<std::shared_ptr<Generation>> live;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [raw, weak] : active_) {
      if (std::shared_ptr<Generation> g = weak.lock()) live.push_back(std::move(g));
    }
  }
  for (const std::shared_ptr<Generation>& g : live) g->CancelFromServer();
}

int GenerationService::num_active() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(active_.size());
}

}  // namespace phi3::service
