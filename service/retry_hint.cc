#include "service/retry_hint.h"

#include <algorithm>
#include <string>

#include "absl/strings/cord.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace phi3::service {
namespace {

using google::protobuf::internal::WireFormatLite;

// google.rpc.RetryInfo { google.protobuf.Duration retry_delay = 1; }
constexpr int kRetryDelayField = 1;

}  // namespace

absl::Status WithRetryDelay(absl::Status status, absl::Duration delay) {
  const int64_t ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(absl::Ceil(
                                              delay, absl::Milliseconds(1))));
  google::protobuf::Duration duration;
  duration.set_seconds(ms / 1000);
  duration.set_nanos(static_cast<int32_t>(ms % 1000) * 1000000);
  std::string retry_info;
  {
    google::protobuf::io::StringOutputStream out(&retry_info);
    google::protobuf::io::CodedOutputStream coded(&out);
    WireFormatLite::WriteBytes(kRetryDelayField, duration.SerializeAsString(), &coded);
  }
  status.SetPayload(kRetryInfoTypeUrl, absl::Cord(retry_info));
  return status;
}

std::optional<absl::Duration> RetryDelayOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kRetryInfoTypeUrl);  // absl::optional<absl::Cord>
  if (!payload.has_value()) return std::nullopt;
  const std::string bytes(*payload);
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  google::protobuf::Duration duration;
  bool found = false;
  while (uint32_t tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) == kRetryDelayField &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::ReadMessage(&in, &duration)) return std::nullopt;
      found = true;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return std::nullopt;
    }
  }
  if (!found) return std::nullopt;
  return absl::Seconds(duration.seconds()) + absl::Nanoseconds(duration.nanos());
}

}  // namespace phi3::service
