// gRPC server reflection (grpc.reflection.v1alpha) behind the API-key check.
//
// Every call is authenticated with the same Authenticator as service Phi3
// (metadata `authorization: Bearer KEY`); an unauthenticated call finishes
// with UNAUTHENTICATED before reading a request. With authentication off
// (--no-auth) every call is admitted.
//
// Answers, one response per request:
// - list_services: the names given at construction plus this service.
// - file_by_filename / file_containing_symbol / file_containing_extension:
//   the file's serialized FileDescriptorProto and those of its transitive
//   dependencies (dependencies first), from the generated descriptor pool.
// - all_extension_numbers_of_type: the extension numbers of the type.
// - unknown names: error_response with NOT_FOUND (5); no request set:
//   error_response with INVALID_ARGUMENT (3). The stream stays open.
//
// Thread safety: the service is immutable after construction; each call's
// reactor handles one request at a time.
#ifndef PHI3_SERVICE_REFLECTION_SERVICE_H_
#define PHI3_SERVICE_REFLECTION_SERVICE_H_

#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "proto/grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "service/auth.h"

namespace phi3::service {

class ReflectionService final
    : public grpc::reflection::v1alpha::ServerReflection::CallbackService {
 public:
  static constexpr char kServiceName[] = "grpc.reflection.v1alpha.ServerReflection";

  // `auth` must outlive the service. `services`: fully qualified names of the
  // other services the server exposes (e.g. "phi3.v1.Phi3").
  ReflectionService(const Authenticator* auth, std::vector<std::string> services);

  grpc::ServerBidiReactor<grpc::reflection::v1alpha::ServerReflectionRequest,
                          grpc::reflection::v1alpha::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* context) override;

  // The response to one request (exposed for tests).
  grpc::reflection::v1alpha::ServerReflectionResponse Answer(
      const grpc::reflection::v1alpha::ServerReflectionRequest& request) const;

 private:
  const Authenticator* auth_;
  std::vector<std::string> services_;
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_REFLECTION_SERVICE_H_
