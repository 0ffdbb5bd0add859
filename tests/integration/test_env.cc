#include "tests/integration/test_env.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <future>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"

namespace phi3::integration {

const Tools& GetTools() {
  static const Tools* tools = new Tools();
  return *tools;
}

const std::string& ScratchDir() {
  static const std::string* dir = [] {
    std::string templ = std::filesystem::temp_directory_path().string() + "/phi3_it_XXXXXX";
    auto* path = new std::string(mkdtemp(templ.data()));
    std::atexit([] { std::filesystem::remove_all(ScratchDir()); });
    return path;
  }();
  return *dir;
}

const std::string& TinyModel() {
  static const std::string* path = [] {
    auto* p = new std::string(ScratchDir() + "/tiny.gguf");
    CommandResult r = RunCommand(
        {GetTools().mkmodel, "--preset=tiny", "--type=f32", "--seed=7", "--threads=2", "--out=" + *p},
        absl::Seconds(120));
    if (r.exit_code != 0) {
      ADD_FAILURE() << "phi3-mkmodel failed: " << r.err;
    }
    return p;
  }();
  return *path;
}

absl::Status WriteSelfSignedCert(const std::string& cert_path, const std::string& key_path) {
  CommandResult openssl = RunCommand(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key_path, "-out", cert_path, "-days",
       "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"},
      absl::Seconds(30));
  if (openssl.exit_code != 0) return absl::InternalError("openssl req failed: " + openssl.err);
  return absl::OkStatus();
}

std::vector<std::string> BasicServerArgs() {
  return {"--model=" + TinyModel(), "--no-auth", "--threads=1"};
}

ServerProcess* SharedServerTest::server_ = nullptr;

void SharedServerTest::SetUpTestSuite() {
  auto server = ServerProcess::Start(GetTools().server, BasicServerArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = server->release();
}

void SharedServerTest::TearDownTestSuite() {
  delete server_;
  server_ = nullptr;
}

std::unique_ptr<v1::Phi3::Stub> NewStub(const std::string& address) {
  return v1::Phi3::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

v1::GenerateRequest Greedy(const std::string& prompt, int max_tokens) {
  v1::GenerateRequest r;
  r.set_prompt(prompt);
  r.mutable_sampling()->set_temperature(0);
  r.mutable_stop()->set_max_tokens(max_tokens);
  return r;
}

Streamed GenerateAll(v1::Phi3::Stub& stub, const v1::GenerateRequest& request,
                     const std::string& api_key, grpc::ClientContext* context) {
  grpc::ClientContext own;
  if (context == nullptr) {
    context = &own;
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  }
  if (!api_key.empty()) context->AddMetadata("authorization", "Bearer " + api_key);
  Streamed s;
  auto reader = stub.Generate(context, request);
  v1::GenerateResponse m;
  while (reader->Read(&m)) {
    ++s.num_messages;
    s.text += m.text();
    s.tokens.insert(s.tokens.end(), m.token_ids().begin(), m.token_ids().end());
    if (m.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) s.last = m;
  }
  s.status = reader->Finish();
  return s;
}

int HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  // HealthCheckRequest { string service = 1; }
  std::string bytes;
  if (!service.empty()) {
    bytes.push_back(0x0a);
    bytes.push_back(static_cast<char>(service.size()));
    bytes += service;
  }
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                 &response, [&done](grpc::Status s) { done.set_value(std::move(s)); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) return -static_cast<int>(status.error_code());
  std::vector<grpc::Slice> slices;
  (void)response.Dump(&slices);
  std::string out;
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // HealthCheckResponse { ServingStatus status = 1; }: 0x08 <status>.
  if (out.size() == 2 && out[0] == 0x08) return out[1];
  return out.empty() ? 0 : -100;
}

std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> metrics;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) continue;
    double value;
    if (!absl::SimpleAtod(line.substr(space + 1), &value)) continue;
    metrics[std::string(line.substr(0, space))] = value;
  }
  return metrics;
}

double SumMetric(const std::map<std::string, double>& metrics, const std::string& name,
                 const std::vector<std::string>& must_contain) {
  double sum = 0;
  for (const auto& [series, value] : metrics) {
    if (series != name && series.rfind(name + "{", 0) != 0) continue;
    bool all = true;
    for (const std::string& part : must_contain) all = all && series.find(part) != std::string::npos;
    if (all) sum += value;
  }
  return sum;
}

}  // namespace phi3::integration
