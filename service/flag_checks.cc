#include "service/flag_checks.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace phi3::service {

absl::Status CheckFlagRange(absl::string_view flag, int64_t value, int64_t min, int64_t max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " must be in [", min, ", ", max, "], got ", value));
}

absl::Status CheckPriceFlag(absl::string_view flag, double value) {
  if (std::isfinite(value) && value >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " must be a finite price >= 0 (USD per million tokens), got ",
                   value));
}

absl::Status CheckDurationFlag(absl::string_view flag, absl::Duration value, absl::Duration min,
                               bool allow_infinite) {
  if (value == absl::InfiniteDuration() && !allow_infinite) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be finite, got inf"));
  }
  if (value >= min) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be at least ",
                                                 absl::FormatDuration(min), ", got ",
                                                 absl::FormatDuration(value)));
}

absl::StatusOr<int> CheckListenFlag(absl::string_view flag, absl::string_view address) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be HOST:PORT ([V6]:PORT "
                                                   "for IPv6), got \"", address, "\": ", why));
  };
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return bad("no port");
  const absl::string_view host = address.substr(0, colon);
  const absl::string_view port = address.substr(colon + 1);
  if (host.empty()) return bad("no host");
  if (host.front() == '[' ? host.back() != ']' || host.size() < 3
                          : host.find(':') != absl::string_view::npos) {
    return bad("an IPv6 host goes in brackets");
  }
  int value = 0;
  if (port.empty() || !std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
      port.size() > 5 || !absl::SimpleAtoi(port, &value) || value > 65535) {
    return bad("the port must be a number in [0, 65535]");
  }
  return value;
}

int MaxComputeThreads() {
  return std::max(64, 4 * static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace phi3::service
