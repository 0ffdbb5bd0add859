// The clients against the real server: phi3-client's command-line contract
// (--json shape, exit codes, errors on stderr), and the Python and TypeScript
// examples streaming the same greedy tokens as the C++ stub.
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/descriptor_database.h"
#include "gtest/gtest.h"
#include "proto/grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/integration/test_env.h"

namespace phi3::integration {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ClientsTest : public SharedServerTest {
 protected:
  CommandResult Client(std::vector<std::string> args) {
    std::vector<std::string> argv = {GetTools().client, "--addr", server_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, absl::Seconds(60));
  }
  // Greedy tokens for `prompt` from the C++ stub.
  std::vector<int> Reference(const std::string& prompt, int max_tokens) {
    auto stub = NewStub(server_->address());
    Streamed s = GenerateAll(*stub, Greedy(prompt, max_tokens));
    EXPECT_TRUE(s.status.ok());
    return s.tokens;
  }
};

TEST_F(ClientsTest, GenerateJsonFollowsTheContract) {
  CommandResult r = Client({"generate", "--prompt", "Hello \"quoted\"\nworld", "--max-tokens", "6",
                            "--temperature", "0", "--seed", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Exactly one JSON object on stdout, keys in the documented order.
  EXPECT_THAT(r.out, StartsWith("{\"text\":"));
  size_t pos = 0;
  for (const char* key : {"\"text\":", "\"completion_tokens\":[", "\"finish_reason\":",
                          "\"usage\":{\"prompt_tokens\":", "\"cached_prompt_tokens\":",
                          "\"completion_tokens\":", "\"cost_usd\":", "\"timings\":{\"queue_ms\":",
                          "\"ttft_ms\":", "\"total_ms\":"}) {
    const size_t at = r.out.find(key, pos);
    ASSERT_NE(at, std::string::npos) << key << " in " << r.out;
    pos = at;
  }
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
  EXPECT_EQ(*JsonStringField(r.out, "finish_reason"), "LENGTH");
  EXPECT_EQ(*JsonIntArrayField(r.out, "completion_tokens"),
            Reference("Hello \"quoted\"\nworld", 6));
  EXPECT_THAT(r.out, HasSubstr("\"cached_prompt_tokens\":0,\"completion_tokens\":6}"));
  EXPECT_GT(*JsonNumberField(r.out, "cost_usd"), 0);
  EXPECT_GT(*JsonNumberField(r.out, "total_ms"), 0);
}

TEST_F(ClientsTest, StreamsTextAndStats) {
  CommandResult r = Client({"generate", "--prompt", "Tell me", "--max-tokens", "5",
                            "--temperature", "0", "--stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  EXPECT_THAT(r.err, HasSubstr("finish_reason=LENGTH"));
  EXPECT_THAT(r.err, HasSubstr("completion_tokens=5"));
  EXPECT_THAT(r.err, HasSubstr("ttft_ms="));
}

TEST_F(ClientsTest, ChatTokenizeInfo) {
  CommandResult chat = Client({"chat", "--system", "Be brief.", "--user", "Hi", "--max-tokens", "4",
                               "--temperature", "0", "--stop", "zzzz", "--json"});
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_EQ(JsonIntArrayField(chat.out, "completion_tokens")->size() <= 4, true);
  CommandResult tok = Client({"tokenize", "--text", "Hello world", "--json"});
  ASSERT_EQ(tok.exit_code, 0) << tok.err;
  EXPECT_EQ(*JsonIntArrayField(tok.out, "token_ids"), (std::vector<int>{1, 15043, 3186}));
  CommandResult info = Client({"info", "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(*JsonStringField(info.out, "architecture"), "phi3");
  EXPECT_EQ(*JsonNumberField(info.out, "vocab_size"), 32064);
}

TEST_F(ClientsTest, FailuresExitNonZeroWithCodeAndMessage) {
  CommandResult bad = Client({"generate", "--prompt", "x", "--temperature", "9"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("INVALID_ARGUMENT: sampling.temperature must be in [0, 2], got 9"));
  CommandResult usage = Client({"generate"});
  EXPECT_EQ(usage.exit_code, 2);
  CommandResult down = RunCommand({GetTools().client, "--addr", "127.0.0.1:1", "--timeout", "5",
                                   "info"}, absl::Seconds(30));
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_THAT(down.err, HasSubstr("UNAVAILABLE"));
}

TEST_F(ClientsTest, PythonExampleStreamsFromTheServer) {
  CommandResult r = RunCommand(
      {"/usr/bin/python3", GetTools().source_dir + "/clients/python/example.py", "--addr",
       server_->address(), "--prompt", "Python says", "--max-tokens", "7", "--json"},
      absl::Seconds(60),
      {"PYTHONPATH=" + GetTools().python_stubs + ":" + GetTools().source_dir +
       "/clients/python/src"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(*JsonIntArrayField(r.out, "completion_tokens"), Reference("Python says", 7));
  EXPECT_EQ(*JsonStringField(r.out, "finish_reason"), "LENGTH");
}

TEST_F(ClientsTest, TypeScriptExampleStreamsFromTheServer) {
  // clients/typescript/dist is built by the phi3_ts_client target.
  const std::string example = GetTools().source_dir + "/clients/typescript/dist/example.js";
  ASSERT_TRUE(std::filesystem::exists(example))
      << "run `npm ci --ignore-scripts` in clients/typescript (scripts/setup.sh does), then build";
  CommandResult r = RunCommand(
      {"/usr/bin/node", example, "--addr", server_->address(), "--prompt", "TypeScript says",
       "--max-tokens", "7", "--json"},
      absl::Seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(*JsonIntArrayField(r.out, "completion_tokens"), Reference("TypeScript says", 7));
  EXPECT_EQ(*JsonStringField(r.out, "finish_reason"), "LENGTH");
}

namespace rpb = ::grpc::reflection::v1alpha;

struct Reflected {
  std::vector<rpb::ServerReflectionResponse> responses;
  grpc::Status status;
};

// Sends `requests` on one ServerReflectionInfo stream, reading one response
// after each, then half-closes.
Reflected Reflect(const std::shared_ptr<grpc::Channel>& channel, const std::string& api_key,
                  const std::vector<rpb::ServerReflectionRequest>& requests) {
  auto stub = rpb::ServerReflection::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!api_key.empty()) context.AddMetadata("authorization", "Bearer " + api_key);
  auto stream = stub->ServerReflectionInfo(&context);
  Reflected out;
  for (const rpb::ServerReflectionRequest& request : requests) {
    rpb::ServerReflectionResponse response;
    if (!stream->Write(request) || !stream->Read(&response)) break;
    out.responses.push_back(response);
  }
  stream->WritesDone();
  out.status = stream->Finish();
  return out;
}

rpb::ServerReflectionRequest ListServices() {
  rpb::ServerReflectionRequest r;
  r.set_list_services("");
  return r;
}
rpb::ServerReflectionRequest FileContainingSymbol(const std::string& symbol) {
  rpb::ServerReflectionRequest r;
  r.set_file_containing_symbol(symbol);
  return r;
}

std::vector<std::string> ServiceNames(const rpb::ServerReflectionResponse& r) {
  std::vector<std::string> names;
  for (const auto& s : r.list_services_response().service()) names.push_back(s.name());
  return names;
}

TEST_F(ClientsTest, ReflectionAndHealthAreServed) {
  auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  EXPECT_EQ(HealthCheck(channel), 1);
  EXPECT_EQ(HealthCheck(channel, "phi3.v1.Phi3"), 1);
  // This server runs with --no-auth: reflection needs no key.
  Reflected r = Reflect(channel, "", {ListServices()});
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_THAT(ServiceNames(r.responses[0]),
              ::testing::UnorderedElementsAre("phi3.v1.Phi3", "grpc.health.v1.Health",
                                              "grpc.reflection.v1alpha.ServerReflection"));
}

TEST(Reflection, NeedsAKeyWhenAuthIsOnAndDescribesThePublicApi) {
  const std::string keys = ScratchDir() + "/keys.txt";
  std::ofstream(keys) << "key-alpha alpha\n";
  auto server = ServerProcess::Start(
      GetTools().server, {"--model=" + TinyModel(), "--api-keys=" + keys, "--threads=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());

  // Without a key, or with a wrong one: UNAUTHENTICATED; health stays open.
  EXPECT_EQ(Reflect(channel, "", {ListServices()}).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Reflect(channel, "wrong-key", {ListServices()}).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(HealthCheck(channel), 1);
  EXPECT_EQ(HealthCheck(channel, "phi3.v1.Phi3"), 1);

  Reflected r = Reflect(channel, "key-alpha",
                        {ListServices(), FileContainingSymbol("phi3.v1.Phi3"),
                         FileContainingSymbol("phi3.v1.NoSuchThing")});
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(r.responses.size(), 3u);
  EXPECT_THAT(ServiceNames(r.responses[0]), ::testing::Contains("phi3.v1.Phi3"));
  EXPECT_THAT(ServiceNames(r.responses[0]), ::testing::Contains("grpc.health.v1.Health"));

  // The descriptors (dependencies included) rebuild the service in a fresh pool.
  const rpb::ServerReflectionResponse& files = r.responses[1];
  ASSERT_TRUE(files.has_file_descriptor_response()) << files.DebugString();
  google::protobuf::SimpleDescriptorDatabase database;
  for (const std::string& bytes : files.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto proto;
    ASSERT_TRUE(proto.ParseFromString(bytes));
    ASSERT_TRUE(database.Add(proto)) << proto.name();
  }
  google::protobuf::DescriptorPool pool(&database);
  const google::protobuf::ServiceDescriptor* phi3 = pool.FindServiceByName("phi3.v1.Phi3");
  ASSERT_NE(phi3, nullptr);
  const google::protobuf::MethodDescriptor* generate = phi3->FindMethodByName("Generate");
  ASSERT_NE(generate, nullptr);
  EXPECT_TRUE(generate->server_streaming());
  EXPECT_EQ(generate->input_type()->full_name(), "phi3.v1.GenerateRequest");

  const rpb::ServerReflectionResponse& unknown = r.responses[2];
  ASSERT_TRUE(unknown.has_error_response()) << unknown.DebugString();
  EXPECT_EQ(unknown.error_response().error_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
}

}  // namespace
}  // namespace phi3::integration
