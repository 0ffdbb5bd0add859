#include "service/reflection_service.h"

#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "service/status_util.h"

namespace phi3::service {
namespace {

namespace rpb = ::grpc::reflection::v1alpha;
using ::google::protobuf::Descriptor;
using ::google::protobuf::DescriptorPool;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::FileDescriptor;

// Appends `file` after its transitive dependencies, each file once.
void AddFileWithDependencies(const FileDescriptor* file,
                             absl::flat_hash_set<std::string>* seen,
                             rpb::FileDescriptorResponse* out) {
  if (!seen->insert(std::string(file->name())).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFileWithDependencies(file->dependency(i), seen, out);
  }
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(out->add_file_descriptor_proto());
}

void SetError(grpc::StatusCode code, std::string message, rpb::ServerReflectionResponse* r) {
  r->mutable_error_response()->set_error_code(static_cast<int>(code));
  r->mutable_error_response()->set_error_message(std::move(message));
}

void SetFile(const FileDescriptor* file, rpb::ServerReflectionResponse* r) {
  absl::flat_hash_set<std::string> seen;
  AddFileWithDependencies(file, &seen, r->mutable_file_descriptor_response());
}

std::optional<absl::string_view> AuthorizationOf(const grpc::CallbackServerContext* context) {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  return absl::string_view(it->second.data(), it->second.size());
}

// One call: read a request, write its answer, repeat until the client
// half-closes. Deletes itself when done.
class ReflectionStream final
    : public grpc::ServerBidiReactor<rpb::ServerReflectionRequest, rpb::ServerReflectionResponse> {
 public:
  ReflectionStream(const ReflectionService* service, grpc::CallbackServerContext* context,
                   const Authenticator* auth)
      : service_(service) {
    absl::StatusOr<Caller> caller = auth->Authenticate(AuthorizationOf(context));
    if (!caller.ok()) {
      Finish(ToGrpcStatus(caller.status()));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // Client half-closed (or the call broke).
      Finish(grpc::Status::OK);
      return;
    }
    response_ = service_->Answer(request_);
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "reflection stream write failed"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  const ReflectionService* service_;
  rpb::ServerReflectionRequest request_;
  rpb::ServerReflectionResponse response_;
};

}  // namespace

ReflectionService::ReflectionService(const Authenticator* auth, std::vector<std::string> services)
    : auth_(auth), services_(std::move(services)) {
  services_.push_back(kServiceName);
}

grpc::ServerBidiReactor<rpb::ServerReflectionRequest, rpb::ServerReflectionResponse>*
ReflectionService::ServerReflectionInfo(grpc::CallbackServerContext* context) {
  return new ReflectionStream(this, context, auth_);
}

rpb::ServerReflectionResponse ReflectionService::Answer(
    const rpb::ServerReflectionRequest& request) const {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  rpb::ServerReflectionResponse r;
  r.set_valid_host(request.host());
  *r.mutable_original_request() = request;
  switch (request.message_request_case()) {
    case rpb::ServerReflectionRequest::kListServices:
      for (const std::string& name : services_) {
        r.mutable_list_services_response()->add_service()->set_name(name);
      }
      break;
    case rpb::ServerReflectionRequest::kFileByFilename: {
      const FileDescriptor* file = pool->FindFileByName(request.file_by_filename());
      if (file == nullptr) {
        SetError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no file named '", request.file_by_filename(), "'"), &r);
      } else {
        SetFile(file, &r);
      }
      break;
    }
    case rpb::ServerReflectionRequest::kFileContainingSymbol: {
      const FileDescriptor* file = pool->FindFileContainingSymbol(request.file_containing_symbol());
      if (file == nullptr) {
        SetError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no symbol '", request.file_containing_symbol(), "'"), &r);
      } else {
        SetFile(file, &r);
      }
      break;
    }
    case rpb::ServerReflectionRequest::kFileContainingExtension: {
      const rpb::ExtensionRequest& ext = request.file_containing_extension();
      const Descriptor* type = pool->FindMessageTypeByName(ext.containing_type());
      const FieldDescriptor* field =
          type == nullptr ? nullptr : pool->FindExtensionByNumber(type, ext.extension_number());
      if (field == nullptr) {
        SetError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no extension ", ext.extension_number(), " of type '",
                              ext.containing_type(), "'"),
                 &r);
      } else {
        SetFile(field->file(), &r);
      }
      break;
    }
    case rpb::ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const Descriptor* type = pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        SetError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no message type '", request.all_extension_numbers_of_type(), "'"),
                 &r);
        break;
      }
      std::vector<const FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      rpb::ExtensionNumberResponse* out = r.mutable_all_extension_numbers_response();
      out->set_base_type_name(std::string(type->full_name()));
      for (const FieldDescriptor* field : extensions) out->add_extension_number(field->number());
      break;
    }
    case rpb::ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      SetError(grpc::StatusCode::INVALID_ARGUMENT, "the request sets no message_request", &r);
      break;
  }
  return r;
}

}  // namespace phi3::service
