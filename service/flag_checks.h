// Checks of phi3-server's command-line values. Each error is one line naming
// the flag, what it accepts and what was given.
#ifndef PHI3_SERVICE_FLAG_CHECKS_H_
#define PHI3_SERVICE_FLAG_CHECKS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace phi3::service {

// InvalidArgument unless min <= value <= max.
absl::Status CheckFlagRange(absl::string_view flag, int64_t value, int64_t min, int64_t max);

// InvalidArgument unless the price is finite and >= 0.
absl::Status CheckPriceFlag(absl::string_view flag, double value);

// InvalidArgument unless min <= value (InfiniteDuration allowed when
// `allow_infinite`).
absl::Status CheckDurationFlag(absl::string_view flag, absl::Duration value, absl::Duration min,
                               bool allow_infinite);

// A listen address HOST:PORT ([V6]:PORT for IPv6) with PORT a number in
// [0, 65535] (0 = pick a free port). Returns the port; InvalidArgument if
// the host or port is missing or malformed (gRPC would otherwise default a
// bare host to port 443).
absl::StatusOr<int> CheckListenFlag(absl::string_view flag, absl::string_view address);

// Largest --threads accepted: four per hardware thread, at least 64.
int MaxComputeThreads();

}  // namespace phi3::service

#endif  // PHI3_SERVICE_FLAG_CHECKS_H_
