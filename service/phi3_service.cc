#include "service/phi3_service.h"

#include <utility>

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
    : engine_(engine), auth_(auth), metrics_(metrics), options_(std::move(options)) {}

Phi3Service::~Phi3Service() = default;

absl::StatusOr<std::string> Phi3Service::Admit(grpc::CallbackServerContext* context) const {
  if (draining_.load()) return absl::UnavailableError("server is shutting down");
  return auth_->Authenticate(AuthorizationOf(context));
}

grpc::ServerWriteReactor<v1::GenerateResponse>* Phi3Service::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  absl::StatusOr<std::string> tenant = Admit(context);
  if (!tenant.ok()) return new GenerateStream(this, context, tenant.status(), "unauthenticated");
  return new GenerateStream(this, context,
                            ConvertGenerate(*request, *engine_, options_.limits, *tenant), *tenant);
}

grpc::ServerWriteReactor<v1::GenerateResponse>* Phi3Service::Chat(
    grpc::CallbackServerContext* context, const v1::ChatRequest* request) {
  absl::StatusOr<std::string> tenant = Admit(context);
  if (!tenant.ok()) return new GenerateStream(this, context, tenant.status(), "unauthenticated");
  return new GenerateStream(this, context,
                            ConvertChat(*request, *engine_, options_.limits, *tenant), *tenant);
}

grpc::ServerUnaryReactor* Phi3Service::Tokenize(grpc::CallbackServerContext* context,
                                                const v1::TokenizeRequest* request,
                                                v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> tenant = Admit(context);
  if (!tenant.ok()) {
    reactor->Finish(ToGrpcStatus(tenant.status()));
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
  absl::StatusOr<std::string> tenant = Admit(context);
  if (!tenant.ok()) {
    reactor->Finish(ToGrpcStatus(tenant.status()));
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

void Phi3Service::StreamDone(GenerateStream* stream) {
  metrics_->AddActiveStreams(-1);
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
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
