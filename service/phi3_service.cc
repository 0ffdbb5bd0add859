#include "service/phi3_service.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "service/generate_stream.h"
#include "service/status_util.h"

namespace phi3::service {
namespace {

std::optional<absl::string_view> AuthorizationOf(const grpc::CallbackServerContext* context) {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  return absl::string_view(it->second.data(), it->second.size());
}

}  // namespace

Phi3Service::Phi3Service(Engine* engine, const Authenticator* auth, ServiceMetrics* metrics,
                         ServiceOptions options)
    : engine_(engine), auth_(auth), metrics_(metrics), options_(std::move(options)) {
  if (options_.stream_idle_timeout != absl::InfiniteDuration()) {
    watchdog_ = std::thread([this] { WatchIdleStreams(); });
  }
}

Phi3Service::~Phi3Service() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (watchdog_.joinable()) watchdog_.join();
}

absl::StatusOr<Caller> Phi3Service::Admit(grpc::CallbackServerContext* context) const {
  if (draining_.load()) return absl::UnavailableError("server is shutting down");
  if (context->client_metadata().count("authorization") > 1) {
    return absl::UnauthenticatedError("more than one authorization metadata entry");
  }
  return auth_->Authenticate(AuthorizationOf(context));
}

GenerateStream* Phi3Service::OpenStream(
    grpc::CallbackServerContext* context,
    absl::FunctionRef<absl::StatusOr<GenerateRequest>(const Caller&)> convert) {
  absl::StatusOr<Caller> caller = Admit(context);
  if (!caller.ok()) return new GenerateStream(this, context, caller.status(), "unauthenticated");
  TenantLimiter::StreamSlot slot;
  if (options_.limiter != nullptr) {
    absl::StatusOr<TenantLimiter::StreamSlot> admitted = options_.limiter->AdmitStream(*caller);
    if (!admitted.ok()) return new GenerateStream(this, context, admitted.status(), caller->tenant);
    slot = *std::move(admitted);
  }
  absl::StatusOr<GenerateRequest> request = convert(*caller);
  if (request.ok()) request->cache_scope = CacheScopeOf(*caller, options_.isolate_tenants);
  return new GenerateStream(this, context, std::move(request), caller->tenant, caller->key_id,
                            std::move(slot));
}

grpc::ServerWriteReactor<v1::GenerateResponse>* Phi3Service::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  return OpenStream(context, [&](const Caller& caller) {
    return ConvertGenerate(*request, *engine_, options_.limits, caller.tenant);
  });
}

grpc::ServerWriteReactor<v1::GenerateResponse>* Phi3Service::Chat(
    grpc::CallbackServerContext* context, const v1::ChatRequest* request) {
  return OpenStream(context, [&](const Caller& caller) {
    return ConvertChat(*request, *engine_, options_.limits, caller.tenant);
  });
}

grpc::ServerUnaryReactor* Phi3Service::Tokenize(grpc::CallbackServerContext* context,
                                                const v1::TokenizeRequest* request,
                                                v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = Admit(context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  // The byte cap bounds the response too: never more ids than bytes + 2.
  if (absl::Status s = CheckTextBytes("text", request->text().size(), options_.limits);
      !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  const std::vector<int32_t> ids = engine_->Tokenize(
      request->text(), request->has_add_special() ? request->add_special() : true,
      request->parse_special());
  response->mutable_token_ids()->Assign(ids.begin(), ids.end());
  response->set_num_tokens(static_cast<int32_t>(ids.size()));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* Phi3Service::GetModelInfo(grpc::CallbackServerContext* context,
                                                    const v1::GetModelInfoRequest* request,
                                                    v1::GetModelInfoResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = Admit(context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  const ModelInfo& info = engine_->Info();
  response->set_name(info.name);
  response->set_architecture(info.architecture);
  response->set_context_length(info.context_length);
  response->set_vocab_size(info.vocab_size);
  response->set_quantization(info.quantization);
  response->set_file_sha256(info.file_sha256);
  response->set_parameter_count(info.parameter_count);
  response->set_num_layers(info.num_layers);
  response->set_embedding_size(info.embedding_size);
  v1::EngineLimits* limits = response->mutable_limits();
  const EngineOptions& eo = options_.engine_options;
  limits->set_context_size(info.context_size);
  limits->set_max_running_sequences(eo.max_running_sequences);
  limits->set_max_batched_tokens(eo.max_batched_tokens);
  limits->set_max_waiting_requests(eo.max_waiting_requests);
  limits->set_kv_block_size(eo.kv_block_size);
  limits->set_max_stop_strings(options_.limits.max_stop_strings);
  limits->set_max_stop_string_bytes(kMaxStopStringBytes);
  limits->set_max_top_logprobs(kMaxTopLogprobs);
  limits->set_default_max_tokens(options_.limits.default_max_tokens);
  v1::Prices* prices = response->mutable_prices();
  prices->set_input_usd_per_million(metrics_->prices().input_per_million);
  prices->set_cached_input_usd_per_million(metrics_->prices().cached_input_per_million);
  prices->set_output_usd_per_million(metrics_->prices().output_per_million);
  response->set_server_version(options_.server_version);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

void Phi3Service::StreamStarted(GenerateStream* stream) {
  metrics_->AddActiveStreams(1);
  absl::MutexLock lock(&mu_);
  streams_.insert(stream);
}

bool Phi3Service::StreamDone(GenerateStream* stream) {
  metrics_->AddActiveStreams(-1);
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
  if (!pinned_.contains(stream)) return true;
  done_while_pinned_.insert(stream);
  return false;
}

void Phi3Service::WatchIdleStreams() {
  const absl::Duration timeout = options_.stream_idle_timeout;
  const absl::Duration period =
      std::clamp(timeout / 4, absl::Milliseconds(10), absl::Seconds(1));
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_), period)) {
    const absl::Time now = absl::Now();
    std::vector<GenerateStream*> idle;
    for (GenerateStream* stream : streams_) {
      std::optional<absl::Time> since = stream->StalledWriteSince();
      if (since.has_value() && now - *since >= timeout) idle.push_back(stream);
    }
    if (idle.empty()) continue;
    // Cancel outside mu_: gRPC may run the reactor's callbacks (OnDone ->
    // StreamDone) on this thread. Pinned streams outlive their OnDone.
    pinned_.insert(idle.begin(), idle.end());
    mu_.Unlock();
    for (GenerateStream* stream : idle) stream->CancelIdle(timeout);
    mu_.Lock();
    std::vector<GenerateStream*> finished;
    for (GenerateStream* stream : idle) {
      pinned_.erase(stream);
      if (done_while_pinned_.erase(stream) > 0) finished.push_back(stream);
    }
    mu_.Unlock();
    for (GenerateStream* stream : finished) delete stream;
    mu_.Lock();
  }
}

void Phi3Service::StartDrain() { draining_.store(true); }

bool Phi3Service::WaitUntilIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

void Phi3Service::CancelAll() {
  // Holding mu_ keeps every stream alive (OnDone waits in StreamDone);
  // CancelFromServer never takes mu_.
  absl::MutexLock lock(&mu_);
  for (GenerateStream* stream : streams_) stream->CancelFromServer();
}

int Phi3Service::num_active_streams() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(streams_.size());
}

}  // namespace phi3::service
