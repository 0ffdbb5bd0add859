// Shared setup of the integration tests: tool paths (compile definitions from
// CMake), the tiny generated model, gRPC helpers against a running server, and
// Prometheus text parsing.
#ifndef PHI3_TESTS_INTEGRATION_TEST_ENV_H_
#define PHI3_TESTS_INTEGRATION_TEST_ENV_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/phi3/v1/phi3.grpc.pb.h"
#include "tests/integration/process_util.h"

namespace phi3::integration {

struct Tools {
  std::string server = PHI3_SERVER_PATH;
  std::string client = PHI3_CLIENT_PATH;
  std::string mkmodel = PHI3_MKMODEL_PATH;
  std::string run = PHI3_RUN_PATH;
  std::string source_dir = PHI3_SOURCE_DIR;
  std::string python_stubs = PHI3_PYTHON_STUBS_DIR;
};
const Tools& GetTools();

// A scratch directory for this test binary (created once, removed at exit).
const std::string& ScratchDir();
// The tiny random-weights model, generated once per test binary.
const std::string& TinyModel();

// Writes a self-signed EC certificate for localhost and 127.0.0.1 (valid one
// day) and its key, with openssl. Returns openssl's stderr on failure.
absl::Status WriteSelfSignedCert(const std::string& cert_path, const std::string& key_path);

// Server args used by most tests: the tiny model, no auth, 1 compute thread.
std::vector<std::string> BasicServerArgs();

// A fixture whose tests share one server (BasicServerArgs()) started once per
// test suite and stopped after it.
class SharedServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override { ASSERT_NE(server_, nullptr); }

  static ServerProcess* server_;
};

std::unique_ptr<v1::Phi3::Stub> NewStub(const std::string& address);

struct Streamed {
  std::string text;
  std::vector<int> tokens;
  v1::GenerateResponse last;  // the message with finish_reason set
  int num_messages = 0;
  grpc::Status status;
};
// Runs a Generate call to completion (deadline 60 s unless `context` has one).
Streamed GenerateAll(v1::Phi3::Stub& stub, const v1::GenerateRequest& request,
                     const std::string& api_key = "", grpc::ClientContext* context = nullptr);
v1::GenerateRequest Greedy(const std::string& prompt, int max_tokens);

// grpc.health.v1.Health/Check: 1 SERVING, 2 NOT_SERVING, or -code on error.
int HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service = "");

// Prometheus text format: "name{labels}" -> value (labels as printed).
std::map<std::string, double> ParseMetrics(const std::string& text);
// Sum of all series of `name` whose label text contains every `must_contain`.
double SumMetric(const std::map<std::string, double>& metrics, const std::string& name,
                 const std::vector<std::string>& must_contain = {});

}  // namespace phi3::integration

#endif  // PHI3_TESTS_INTEGRATION_TEST_ENV_H_
