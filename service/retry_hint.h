// A retry delay carried by an absl::Status, transport-neutral: the payload is
// a serialized google.rpc.RetryInfo under its type URL (the convention by
// which gRPC's richer error model rides on a status). ToGrpcStatus
// (status_util.h) sends it as grpc-status-details-bin; an HTTP front end can
// turn it into Retry-After.
#ifndef PHI3_SERVICE_RETRY_HINT_H_
#define PHI3_SERVICE_RETRY_HINT_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace phi3::service {

inline constexpr absl::string_view kRetryInfoTypeUrl = "type.googleapis.com/google.rpc.RetryInfo";

// `status` with a RetryInfo payload of `delay` (rounded up to milliseconds,
// at least 1 ms). REQUIRES: !status.ok().
absl::Status WithRetryDelay(absl::Status status, absl::Duration delay);

// The delay of a RetryInfo payload, or nullopt if there is none (or it does
// not parse).
std::optional<absl::Duration> RetryDelayOf(const absl::Status& status);

}  // namespace phi3::service

#endif  // PHI3_SERVICE_RETRY_HINT_H_
