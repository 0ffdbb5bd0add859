// The OpenAI-compatible HTTP API against the real server, driven by the
// official OpenAI SDK (tests/openai/openai_check.mjs): models list, chat and
// completions, streamed and not, usage, a bad key, a bad request and a
// disconnect mid-stream; the text equals the gRPC API's for the same greedy
// request, and the metrics count HTTP requests like gRPC ones.
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/test_env.h"

namespace phi3::integration {
namespace {

using ::nlohmann::json;
using ::testing::HasSubstr;

constexpr char kKey[] = "sk-openai-test";
constexpr int kMaxTokens = 12;

class OpenAiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string keys = ScratchDir() + "/openai_keys.txt";
    std::ofstream(keys) << kKey << " tenant-openai\n";
    auto server = ServerProcess::Start(
        GetTools().server, {"--model=" + TinyModel(), "--api-keys=" + keys, "--threads=1",
                            "--http-listen=127.0.0.1:0", "--served-model-name=phi3-tiny"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr); }

  std::map<std::string, double> Scrape() {
    absl::StatusOr<std::string> body = HttpGet(server_->metrics_address(), "/metrics");
    EXPECT_TRUE(body.ok()) << body.status();
    return ParseMetrics(body.ok() ? *body : "");
  }

  // Greedy text of `request` over gRPC.
  template <typename Request>
  std::string GrpcText(const Request& request) {
    auto stub = NewStub(server_->address());
    grpc::ClientContext context;
    context.AddMetadata("authorization", std::string("Bearer ") + kKey);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader;
    if constexpr (std::is_same_v<Request, v1::ChatRequest>) {
      reader = stub->Chat(&context, request);
    } else {
      reader = stub->Generate(&context, request);
    }
    std::string text;
    v1::GenerateResponse m;
    while (reader->Read(&m)) text += m.text();
    const grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return text;
  }

  static ServerProcess* server_;
};
ServerProcess* OpenAiTest::server_ = nullptr;

TEST_F(OpenAiTest, OfficialSdkGetsWhatGrpcGives) {
  const std::string dir = GetTools().source_dir + "/tests/openai";
  ASSERT_TRUE(std::filesystem::exists(dir + "/node_modules/openai"))
      << "run `npm ci --ignore-scripts` in tests/openai (scripts/setup.sh --tests does)";
  const std::string prompt = "The capital of France is";
  const std::string user = "Name a colour.";
  // The reference first, so that the counters below see HTTP requests only.
  v1::GenerateRequest generate = Greedy(prompt, kMaxTokens);
  const std::string grpc_completion = GrpcText(generate);
  v1::ChatRequest chat;
  auto* system = chat.add_messages();
  system->set_role(v1::ChatMessage::ROLE_SYSTEM);
  system->set_content("Be brief.");
  auto* turn = chat.add_messages();
  turn->set_role(v1::ChatMessage::ROLE_USER);
  turn->set_content(user);
  chat.mutable_sampling()->set_temperature(0);
  chat.mutable_stop()->set_max_tokens(kMaxTokens);
  const std::string grpc_chat = GrpcText(chat);
  ASSERT_FALSE(grpc_completion.empty());
  const auto before = Scrape();
  CommandResult r = RunCommand(
      {"/usr/bin/node", dir + "/openai_check.mjs", "--base-url",
       "http://" + server_->http_address() + "/v1", "--key", kKey, "--prompt", prompt, "--user",
       user, "--max-tokens", std::to_string(kMaxTokens)},
      absl::Seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json out = json::parse(r.out);

  EXPECT_EQ(out["models"], json::array({"phi3-tiny"}));

  for (const char* name : {"completion", "completion_stream"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(out[name]["text"], grpc_completion);
    EXPECT_EQ(out[name]["usage"]["completion_tokens"], kMaxTokens);
    EXPECT_GT(out[name]["usage"]["prompt_tokens"].get<int>(), 0);
    EXPECT_EQ(out[name]["usage"]["total_tokens"],
              out[name]["usage"]["prompt_tokens"].get<int>() + kMaxTokens);
  }
  for (const char* name : {"chat", "chat_stream"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(out[name]["text"], grpc_chat);
    EXPECT_LE(out[name]["usage"]["completion_tokens"].get<int>(), kMaxTokens);
  }
  EXPECT_EQ(out["completion"]["finish_reason"], "length");
  EXPECT_EQ(out["completion_stream"]["finish_reason"], "length");
  EXPECT_EQ(out["chat"]["role"], "assistant");
  EXPECT_EQ(out["chat_stream"]["finish_reason"], out["chat"]["finish_reason"]);
  EXPECT_GT(out["completion_stream"]["chunks"].get<int>(), 2);

  EXPECT_EQ(out["bad_key"]["status"], 401);
  EXPECT_EQ(out["bad_key"]["type"], "AuthenticationError");
  EXPECT_EQ(out["bad_request"]["status"], 400);
  EXPECT_THAT(out["bad_request"]["message"].get<std::string>(),
              HasSubstr("sampling.temperature must be in [0, 2], got 9"));

  // The aborted stream frees its engine slot, is counted as cancelled and
  // billed for what was produced (well short of its 3000 tokens).
  EXPECT_EQ(out["disconnect"]["chunks_received"], 3);
  const std::string cancelled = "finish_reason=\"cancelled\"";
  std::map<std::string, double> after;
  for (int i = 0; i < 400; ++i) {
    after = Scrape();
    if (SumMetric(after, "phi3_requests_total", {cancelled}) >
            SumMetric(before, "phi3_requests_total", {cancelled}) &&
        SumMetric(after, "phi3_engine_running_requests") == 0 &&
        SumMetric(after, "phi3_active_streams") == 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_EQ(SumMetric(after, "phi3_requests_total", {cancelled, "tenant-openai"}) -
                SumMetric(before, "phi3_requests_total", {cancelled, "tenant-openai"}),
            1);
  EXPECT_EQ(SumMetric(after, "phi3_engine_running_requests"), 0);
  EXPECT_EQ(SumMetric(after, "phi3_active_streams"), 0);
  int answered = 0;
  for (const char* name : {"completion", "completion_stream", "chat", "chat_stream"}) {
    answered += out[name]["usage"]["completion_tokens"].get<int>();
  }
  const double billed = SumMetric(after, "phi3_completion_tokens_total", {"tenant-openai"}) -
                        SumMetric(before, "phi3_completion_tokens_total", {"tenant-openai"}) -
                        answered;
  EXPECT_GE(billed, 3);
  EXPECT_LT(billed, 3000);
  // The four successful generations are counted like gRPC ones.
  EXPECT_EQ(SumMetric(after, "phi3_requests_total", {"finish_reason=\"length\"", "tenant-openai"}) -
                SumMetric(before, "phi3_requests_total",
                          {"finish_reason=\"length\"", "tenant-openai"}),
            2 + (out["chat"]["finish_reason"] == "length" ? 2 : 0));
}

TEST_F(OpenAiTest, UnknownPathsAndModelsAreJsonErrors) {
  auto body = HttpGet(server_->http_address(), "/v1/nothing");
  EXPECT_FALSE(body.ok());
  EXPECT_THAT(std::string(body.status().message()), HasSubstr("404"));
}

TEST(OpenAiStartup, TakenHttpPortFailsInOneLine) {
  int fd = -1;
  const int port = HoldFreePort(&fd);
  CommandResult r = RunCommand({GetTools().server, "--model=" + TinyModel(), "--no-auth",
                                "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                "--http-listen=127.0.0.1:" + std::to_string(port)},
                               absl::Seconds(30));
  close(fd);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("cannot listen for HTTP on 127.0.0.1:" + std::to_string(port) +
                               ": address already in use"));
}

}  // namespace
}  // namespace phi3::integration
