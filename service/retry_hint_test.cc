#include "service/retry_hint.h"

#include "gtest/gtest.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "service/status_util.h"

namespace phi3::service {
namespace {

using google::protobuf::internal::WireFormatLite;

TEST(RetryHint, RoundTripsThroughTheStatusPayload) {
  absl::Status s = WithRetryDelay(absl::ResourceExhaustedError("slow down"),
                                  absl::Milliseconds(1500));
  EXPECT_EQ(RetryDelayOf(s), absl::Milliseconds(1500));
  EXPECT_EQ(RetryDelayOf(absl::ResourceExhaustedError("no hint")), std::nullopt);
  // Sub-millisecond delays round up to 1 ms, never to "retry now".
  EXPECT_EQ(RetryDelayOf(WithRetryDelay(absl::UnavailableError("x"), absl::Microseconds(3))),
            absl::Milliseconds(1));
}

// Decodes grpc-status-details-bin as google.rpc.Status by its public field
// numbers (code 1, message 2, details 3 of google.protobuf.Any) and
// google.rpc.RetryInfo (retry_delay 1).
TEST(RetryHint, GrpcStatusCarriesGoogleRpcRetryInfo) {
  const grpc::Status g = ToGrpcStatus(WithRetryDelay(
      absl::ResourceExhaustedError("tenant a has 2 open streams"), absl::Seconds(7)));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(g.error_message(), "tenant a has 2 open streams");
  const std::string& details = g.error_details();
  ASSERT_FALSE(details.empty());
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(details.data()),
                                            static_cast<int>(details.size()));
  int32_t code = -1;
  std::string message;
  std::vector<google::protobuf::Any> anys;
  while (uint32_t tag = in.ReadTag()) {
    switch (WireFormatLite::GetTagFieldNumber(tag)) {
      case 1: {
        const bool ok =
            WireFormatLite::ReadPrimitive<int32_t, WireFormatLite::TYPE_INT32>(&in, &code);
        ASSERT_TRUE(ok);
        break;
      }
      case 2: ASSERT_TRUE(WireFormatLite::ReadString(&in, &message)); break;
      case 3: ASSERT_TRUE(WireFormatLite::ReadMessage(&in, &anys.emplace_back())); break;
      default: FAIL() << "unexpected field " << WireFormatLite::GetTagFieldNumber(tag);
    }
  }
  EXPECT_EQ(code, static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_EQ(message, "tenant a has 2 open streams");
  ASSERT_EQ(anys.size(), 1u);
  EXPECT_EQ(anys[0].type_url(), "type.googleapis.com/google.rpc.RetryInfo");
  google::protobuf::io::CodedInputStream info(
      reinterpret_cast<const uint8_t*>(anys[0].value().data()),
      static_cast<int>(anys[0].value().size()));
  ASSERT_EQ(WireFormatLite::GetTagFieldNumber(info.ReadTag()), 1);
  google::protobuf::Duration delay;
  ASSERT_TRUE(WireFormatLite::ReadMessage(&info, &delay));
  EXPECT_EQ(delay.seconds(), 7);
  EXPECT_EQ(delay.nanos(), 0);
  // Statuses without payloads carry no details.
  EXPECT_TRUE(ToGrpcStatus(absl::InvalidArgumentError("x")).error_details().empty());
}

}  // namespace
}  // namespace phi3::service
