// Operating the real phi3-server: API keys (and SIGHUP reload), TLS, health,
// SIGTERM drain, and metrics values checked after a known set of requests.
#include <signal.h>

#include <fstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_env.h"

namespace phi3::integration {
namespace {

using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(Auth, KeysTlsHealthAndReload) {
  const std::string dir = ScratchDir();
  const std::string cert = dir + "/cert.pem", key = dir + "/key.pem", keys = dir + "/keys.txt";
  const absl::Status cert_status = WriteSelfSignedCert(cert, key);
  ASSERT_TRUE(cert_status.ok()) << cert_status;
  std::ofstream(keys) << "# tenants\nkey-alpha alpha\nkey-beta beta\n";
  std::vector<std::string> args = {"--model=" + TinyModel(), "--api-keys=" + keys, "--threads=1",
                                   "--tls-cert=" + cert, "--tls-key=" + key};
  auto server = ServerProcess::Start(GetTools().server, args);
  ASSERT_TRUE(server.ok()) << server.status();

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadAll(cert);
  grpc::ChannelArguments channel_args;
  channel_args.SetSslTargetNameOverride("localhost");
  auto channel = grpc::CreateCustomChannel((*server)->address(), grpc::SslCredentials(ssl),
                                           channel_args);
  auto stub = v1::Phi3::NewStub(channel);

  // Health needs no key.
  EXPECT_EQ(HealthCheck(channel), 1);
  EXPECT_EQ(HealthCheck(channel, "phi3.v1.Phi3"), 1);
  // Everything else does.
  EXPECT_EQ(GenerateAll(*stub, Greedy("hi", 2)).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GenerateAll(*stub, Greedy("hi", 2), "wrong-key").status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  {
    grpc::ClientContext context;
    v1::GetModelInfoResponse info;
    EXPECT_EQ(stub->GetModelInfo(&context, {}, &info).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  Streamed ok = GenerateAll(*stub, Greedy("hi", 3), "key-alpha");
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.last.usage().completion_tokens(), 3);

  // A plaintext client cannot talk to the TLS port.
  auto plain = NewStub((*server)->address());
  EXPECT_FALSE(GenerateAll(*plain, Greedy("hi", 2), "key-alpha").status.ok());

  // The CLI over TLS.
  CommandResult cli = RunCommand({GetTools().client, "--addr", (*server)->address(), "--tls",
                                  "--ca-cert", cert, "--tls-server-name", "localhost",
                                  "--api-key", "key-beta", "generate", "--prompt", "hi",
                                  "--max-tokens", "2", "--json"},
                                 absl::Seconds(60));
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_THAT(cli.out, HasSubstr("\"finish_reason\":\"LENGTH\""));
  CommandResult denied = RunCommand({GetTools().client, "--addr", (*server)->address(), "--tls",
                                     "--ca-cert", cert, "--tls-server-name", "localhost", "info"},
                                    absl::Seconds(60));
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_THAT(denied.err, HasSubstr("UNAUTHENTICATED"));

  // SIGHUP reloads the keys file.
  std::ofstream(keys) << "key-gamma gamma\n";
  (*server)->Signal(SIGHUP);
  ASSERT_TRUE((*server)->WaitForLog("reloaded 1 API keys", absl::Seconds(10))) << (*server)->log();
  EXPECT_EQ(GenerateAll(*stub, Greedy("hi", 2), "key-alpha").status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(GenerateAll(*stub, Greedy("hi", 2), "key-gamma").status.ok());

  // Per-tenant counters.
  auto body = HttpGet((*server)->metrics_address(), "/metrics");
  ASSERT_TRUE(body.ok());
  auto metrics = ParseMetrics(*body);
  EXPECT_EQ(SumMetric(metrics, "phi3_completion_tokens_total", {"tenant=\"alpha\""}), 3);
  EXPECT_EQ(SumMetric(metrics, "phi3_completion_tokens_total", {"tenant=\"beta\""}), 2);
  EXPECT_EQ(SumMetric(metrics, "phi3_completion_tokens_total", {"tenant=\"gamma\""}), 2);
  EXPECT_GE(SumMetric(metrics, "phi3_requests_total", {"code=\"UNAUTHENTICATED\""}), 3);
}

// --model-sha256 (case-insensitive hex): a match serves, a mismatch exits 1
// before serving and names both digests.
TEST(ModelChecksum, ServesOnlyWhenTheSha256Matches) {
  CommandResult sum = RunCommand({"/usr/bin/sha256sum", TinyModel()}, absl::Seconds(30));
  ASSERT_EQ(sum.exit_code, 0) << sum.err;
  const std::string sha = sum.out.substr(0, 64);
  std::vector<std::string> args = BasicServerArgs();
  args.push_back("--model-sha256=" + absl::AsciiStrToUpper(sha));
  auto good = ServerProcess::Start(GetTools().server, args);
  ASSERT_TRUE(good.ok()) << good.status();

  std::string wrong = sha;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  args = BasicServerArgs();
  args.push_back("--model-sha256=" + wrong);
  auto bad = ServerProcess::Start(GetTools().server, args);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("exited with 1"));
  EXPECT_THAT(bad.status().message(), HasSubstr("--model-sha256"));
  EXPECT_THAT(bad.status().message(), HasSubstr("\"" + sha + "\", expected \"" + wrong));
}

TEST(Shutdown, SigtermDrainsInFlightStreamsThenExitsZero) {
  std::vector<std::string> args = BasicServerArgs();
  args.push_back("--drain-timeout=60s");
  auto server = ServerProcess::Start(GetTools().server, args);
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::Phi3::NewStub(channel);
  EXPECT_EQ(HealthCheck(channel), 1);

  v1::GenerateRequest req = Greedy("drain me", 60);
  req.mutable_stop()->set_ignore_eos(true);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub->Generate(&context, req);
  v1::GenerateResponse m;
  ASSERT_TRUE(reader->Read(&m));
  int tokens = m.token_ids_size();

  (*server)->Signal(SIGTERM);
  ASSERT_TRUE((*server)->WaitForLog("draining", absl::Seconds(10)));
  // New calls are refused, health says NOT_SERVING, the old stream goes on.
  const int health = HealthCheck(channel);
  EXPECT_TRUE(health == 2 || health == -static_cast<int>(grpc::StatusCode::UNAVAILABLE)) << health;
  Streamed refused = GenerateAll(*stub, Greedy("too late", 2));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  v1::GenerateResponse last;
  while (reader->Read(&m)) {
    tokens += m.token_ids_size();
    if (m.finish_reason()) last = m;
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(tokens, 60);
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ((*server)->WaitForExit(absl::Seconds(30)), 0) << (*server)->log();
}

TEST(Shutdown, DrainTimeoutCancelsAndStillExitsZero) {
  std::vector<std::string> args = BasicServerArgs();
  args.push_back("--drain-timeout=200ms");
  auto server = ServerProcess::Start(GetTools().server, args);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = NewStub((*server)->address());
  v1::GenerateRequest req = Greedy("never finishes in time", 3000);
  req.mutable_stop()->set_ignore_eos(true);
  grpc::ClientContext context;
  auto reader = stub->Generate(&context, req);
  v1::GenerateResponse m;
  ASSERT_TRUE(reader->Read(&m));
  (*server)->Signal(SIGTERM);
  while (reader->Read(&m)) {}
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ((*server)->WaitForExit(absl::Seconds(30)), 0) << (*server)->log();
}

TEST(Metrics, ValuesAfterAKnownSetOfRequestsAndPromtoolPasses) {
  std::vector<std::string> args = BasicServerArgs();
  args.insert(args.end(), {"--price-input=2", "--price-output=8", "--price-cached-input=1"});
  auto server = ServerProcess::Start(GetTools().server, args);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = NewStub((*server)->address());
  int prompt = 0, cached = 0, completion = 0, ok_requests = 0;
  double cost = 0;
  for (int i = 0; i < 4; ++i) {
    // The same prompt twice: the second may hit the prefix cache.
    Streamed s = GenerateAll(*stub, Greedy(i < 2 ? "A shared prefix that is long enough to fill a "
                                                   "block or two of the cache, maybe more"
                                                 : "short " + std::to_string(i),
                                           3 + i));
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    prompt += s.last.usage().prompt_tokens();
    cached += s.last.usage().cached_prompt_tokens();
    completion += s.last.usage().completion_tokens();
    const double expected_cost =
        ((s.last.usage().prompt_tokens() - s.last.usage().cached_prompt_tokens()) * 2.0 +
         s.last.usage().cached_prompt_tokens() * 1.0 + s.last.usage().completion_tokens() * 8.0) / 1e6;
    EXPECT_NEAR(s.last.cost_usd(), expected_cost, 1e-12);
    cost += s.last.cost_usd();
    ++ok_requests;
  }
  // One rejected request.
  EXPECT_EQ(GenerateAll(*stub, Greedy("", 3)).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // Streams end on the server just after their clients see the status: wait
  // until nothing is in flight.
  absl::StatusOr<std::string> body;
  std::map<std::string, double> metrics;
  for (int i = 0; i < 200; ++i) {
    body = HttpGet((*server)->metrics_address(), "/metrics");
    ASSERT_TRUE(body.ok()) << body.status();
    metrics = ParseMetrics(*body);
    if (SumMetric(metrics, "phi3_active_streams") == 0 &&
        SumMetric(metrics, "phi3_engine_running_requests") == 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_EQ(SumMetric(metrics, "phi3_prompt_tokens_total", {"tenant=\"local\""}), prompt);
  EXPECT_EQ(SumMetric(metrics, "phi3_cached_prompt_tokens_total", {"tenant=\"local\""}), cached);
  EXPECT_EQ(SumMetric(metrics, "phi3_completion_tokens_total", {"tenant=\"local\""}), completion);
  EXPECT_NEAR(SumMetric(metrics, "phi3_spend_usd_total", {"tenant=\"local\""}), cost, 1e-9);
  EXPECT_EQ(SumMetric(metrics, "phi3_requests_total",
                      {"code=\"OK\"", "finish_reason=\"length\""}), ok_requests);
  EXPECT_EQ(SumMetric(metrics, "phi3_requests_total",
                      {"code=\"INVALID_ARGUMENT\"", "finish_reason=\"rejected\""}), 1);
  EXPECT_EQ(SumMetric(metrics, "phi3_request_duration_seconds_count"), ok_requests);
  EXPECT_EQ(SumMetric(metrics, "phi3_request_time_to_first_token_seconds_count"), ok_requests);
  EXPECT_EQ(SumMetric(metrics, "phi3_request_queue_wait_seconds_count"), ok_requests);
  EXPECT_EQ(SumMetric(metrics, "phi3_request_prompt_length_tokens_sum"), prompt);
  EXPECT_EQ(SumMetric(metrics, "phi3_request_completion_length_tokens_sum"), completion);
  EXPECT_EQ(SumMetric(metrics, "phi3_request_inter_token_seconds_count"), completion - ok_requests);
  EXPECT_EQ(SumMetric(metrics, "phi3_model_info", {"architecture=\"phi3\""}), 1);
  EXPECT_GT(SumMetric(metrics, "phi3_kv_cache_capacity_blocks"), 0);
  EXPECT_GE(SumMetric(metrics, "phi3_prefix_cache_query_tokens_total"), prompt - 0.5);
  EXPECT_EQ(SumMetric(metrics, "phi3_engine_running_requests"), 0);
  EXPECT_EQ(SumMetric(metrics, "phi3_active_streams"), 0);

  CommandResult promtool = RunCommand({"/usr/bin/promtool", "check", "metrics"}, absl::Seconds(30),
                                      {}, *body);
  EXPECT_EQ(promtool.exit_code, 0) << promtool.out << promtool.err;
}

}  // namespace
}  // namespace phi3::integration
