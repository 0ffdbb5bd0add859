// The one place where absl::Status becomes grpc::Status.
#ifndef PHI3_SERVICE_STATUS_UTIL_H_
#define PHI3_SERVICE_STATUS_UTIL_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace phi3::service {

// Same code (the numeric values of absl::StatusCode and grpc::StatusCode
// agree by design), same message. Payloads (e.g. retry_hint.h's RetryInfo)
// become the details of a google.rpc.Status in grpc-status-details-bin.
grpc::Status ToGrpcStatus(const absl::Status& status);

// "INVALID_ARGUMENT", "OK", ...: the canonical name of a gRPC code.
absl::string_view GrpcCodeName(grpc::StatusCode code);

}  // namespace phi3::service

#endif  // PHI3_SERVICE_STATUS_UTIL_H_
