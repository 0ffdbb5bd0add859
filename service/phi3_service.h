// The phi3.v1.Phi3 gRPC service on the callback API, over the
// transport-neutral GenerationService (service/generation_service.h).
//
// Each Generate/Chat call is one GenerateStream reactor (generate_stream.h)
// that sends what its Generation produces; no RPC thread ever waits for the
// engine. Tokenize and GetModelInfo answer inline. A call is admitted in
// this order: draining?, API key, the tenant's limits, then the request is
// converted (sizes checked before tokenizing) and submitted.
//
// One watchdog thread cancels streams whose client has read nothing for
// stream_idle_timeout (a write still in flight), so every stream ends.
//
// Thread safety: all public methods may be called from any thread.
#ifndef PHI3_SERVICE_PHI3_SERVICE_H_
#define PHI3_SERVICE_PHI3_SERVICE_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "proto/phi3/v1/phi3.grpc.pb.h"
#include "service/generate_stream.h"
#include "service/generation_service.h"

namespace phi3::service {

class Phi3Service final : public v1::Phi3::CallbackService {
 public:
  // `core` must outlive the service.
  explicit Phi3Service(GenerationService* core);
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

 private:
  friend class GenerateStream;
  // The caller, or the status to end the call with.
  absl::StatusOr<Caller> Admit(grpc::CallbackServerContext* context) const;
  // A Generate or Chat call.
  template <typename Request>
  grpc::ServerWriteReactor<v1::GenerateResponse>* Stream(grpc::CallbackServerContext* context,
                                                         const Request& request);
  // The watchdog's view of the open streams.
  void StreamOpened(const std::shared_ptr<GenerateStream::State>& state);
  void StreamClosed(const GenerateStream::State* state);
  void WatchIdleStreams();

  GenerationService* const core_;
  absl::Mutex mu_;
  absl::flat_hash_map<const GenerateStream::State*, std::weak_ptr<GenerateStream::State>>
      streams_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watchdog_;
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_PHI3_SERVICE_H_
