#include "service/phi3_service.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
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

absl::Time DeadlineOf(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

}  // namespace

Phi3Service::Phi3Service(GenerationService* core) : core_(core) {
  if (core_->options().stream_idle_timeout != absl::InfiniteDuration()) {
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
  if (context->client_metadata().count("authorization") > 1) {
    return absl::UnauthenticatedError("more than one authorization metadata entry");
  }
  return core_->Admit(AuthorizationOf(context));
}

template <typename Request>
grpc::ServerWriteReactor<v1::GenerateResponse>* Phi3Service::Stream(
    grpc::CallbackServerContext* context, const Request& request) {
  return new GenerateStream(
      this, context,
      [&](Generation::Notify notify) -> absl::StatusOr<std::shared_ptr<Generation>> {
        absl::StatusOr<Caller> caller = Admit(context);
        if (!caller.ok()) {
          core_->Reject("unauthenticated", caller.status());
          return caller.status();
        }
        return core_->Start({*caller, "grpc", DeadlineOf(context)}, request, std::move(notify));
      });
}

grpc::ServerWriteReactor<v1::GenerateResponse>* Phi3Service::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  return Stream(context, *request);
}

grpc::ServerWriteReactor<v1::GenerateResponse>* Phi3Service::Chat(
    grpc::CallbackServerContext* context, const v1::ChatRequest* request) {
  return Stream(context, *request);
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
  if (absl::Status s = CheckTextBytes("text", request->text().size(), core_->options().limits);
      !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  const std::vector<int32_t> ids = core_->engine().Tokenize(
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
  const ModelInfo& info = core_->engine().Info();
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
  const ServiceOptions& options = core_->options();
  const EngineOptions& eo = options.engine_options;
  limits->set_context_size(info.context_size);
  limits->set_max_running_sequences(eo.max_running_sequences);
  limits->set_max_batched_tokens(eo.max_batched_tokens);
  limits->set_max_waiting_requests(eo.max_waiting_requests);
  limits->set_kv_block_size(eo.kv_block_size);
  limits->set_max_stop_strings(options.limits.max_stop_strings);
  limits->set_max_stop_string_bytes(kMaxStopStringBytes);
  limits->set_max_top_logprobs(kMaxTopLogprobs);
  limits->set_default_max_tokens(options.limits.default_max_tokens);
  v1::Prices* prices = response->mutable_prices();
  prices->set_input_usd_per_million(core_->metrics().prices().input_per_million);
  prices->set_cached_input_usd_per_million(core_->metrics().prices().cached_input_per_million);
  prices->set_output_usd_per_million(core_->metrics().prices().output_per_million);
  response->set_server_version(options.server_version);
  response->set_server_revision(options.server_revision);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

void Phi3Service::StreamOpened(const std::shared_ptr<GenerateStream::State>& state) {
  absl::MutexLock lock(&mu_);
  streams_.emplace(state.get(), state);
}

void Phi3Service::StreamClosed(const GenerateStream::State* state) {
  absl::MutexLock lock(&mu_);
  streams_.erase(state);
}

void Phi3Service::WatchIdleStreams() {
  const absl::Duration timeout = core_->options().stream_idle_timeout;
  const absl::Duration period =
      std::clamp(timeout / 4, absl::Milliseconds(10), absl::Seconds(1));
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_), period)) {
    std::vector<std::shared_ptr<GenerateStream::State>> open;
    for (const auto& [raw, weak] : streams_) {
      if (std::shared_ptr<GenerateStream::State> state = weak.lock()) open.push_back(state);
    }
    // Outside mu_: gRPC may run the reactor's callbacks on this thread.
    mu_.Unlock();
    const absl::Time now = absl::Now();
    for (const std::shared_ptr<GenerateStream::State>& state : open) {
      GenerateStream::CancelIfIdle(state, now, timeout);
    }
    open.clear();
    mu_.Lock();
  }
}

}  // namespace phi3::service
