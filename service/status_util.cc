#include "service/status_util.h"

#include <string>

#include "absl/strings/cord.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace phi3::service {
namespace {

using google::protobuf::internal::WireFormatLite;

// google.rpc.Status { int32 code = 1; string message = 2;
//                     repeated google.protobuf.Any details = 3; }
// with one detail per payload of `status` (its type URL and bytes).
std::string RpcStatusBytes(const absl::Status& status) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    WireFormatLite::WriteInt32(1, static_cast<int32_t>(status.code()), &coded);
    WireFormatLite::WriteString(2, std::string(status.message()), &coded);
    status.ForEachPayload([&coded](absl::string_view type_url, const absl::Cord& value) {
      google::protobuf::Any any;
      any.set_type_url(std::string(type_url));
      any.set_value(std::string(value));
      WireFormatLite::WriteBytes(3, any.SerializeAsString(), &coded);
    });
  }  // the streams flush into `bytes` here
  return bytes;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  bool has_payload = false;
  status.ForEachPayload([&has_payload](absl::string_view, const absl::Cord&) {
    has_payload = true;
  });
  if (!has_payload) return grpc::Status(code, std::string(status.message()));
  return grpc::Status(code, std::string(status.message()), RpcStatusBytes(status));
}

absl::string_view GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

}  // namespace phi3::service
