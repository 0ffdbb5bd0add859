// The real phi3-server on a generated tiny model over loopback: startup,
// output equal to phi3-run's, concurrency, cancellation, deadlines, validation.
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_env.h"

namespace phi3::integration {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ServerTest : public SharedServerTest {
 protected:
  void SetUp() override {
    SharedServerTest::SetUp();
    stub_ = NewStub(server_->address());
  }
  std::map<std::string, double> Scrape() {
    absl::StatusOr<std::string> body = HttpGet(server_->metrics_address(), "/metrics");
    EXPECT_TRUE(body.ok()) << body.status();
    return ParseMetrics(body.ok() ? *body : "");
  }
  std::unique_ptr<v1::Phi3::Stub> stub_;
};

TEST(ServerStartup, HelpDocumentsTheContractFlags) {
  CommandResult r = RunCommand({GetTools().server, "--help"}, absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.err, "");
  for (const char* flag : {"model", "listen", "metrics-listen", "http-listen", "api-keys",
                           "no-auth", "threads", "tls-cert", "tls-key", "drain-timeout",
                           "price-input", "price-output", "price-cached-input"}) {
    EXPECT_THAT(r.out, HasSubstr(std::string("\n  --") + flag)) << flag;
  }
  size_t at = 0;
  for (const char* group : {"\nModel:\n", "\nNetwork:\n", "\nSecurity:\n",
                            "\nEngine limits:\n", "\nPrices and accounting:\n", "\nExamples:\n"}) {
    const size_t found = r.out.find(group, at);
    EXPECT_NE(found, std::string::npos) << group;
    at = found == std::string::npos ? at : found;
  }
  EXPECT_THAT(r.out, HasSubstr("Default: 127.0.0.1:50051."));
  EXPECT_THAT(r.out, HasSubstr("[$PHI3_METRICS_LISTEN]"));
  EXPECT_THAT(r.out, Not(HasSubstr("Other:")));  // every flag is in a group
}

// "phi3-server 0.1.0 (git 1a2b3c4d5e6f)" -> "0.1.0 (git 1a2b3c4d5e6f)".
std::string VersionOf(const std::string& program, const std::string& name) {
  CommandResult r = RunCommand({program, "--version"}, absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 0) << name;
  EXPECT_THAT(r.out, ::testing::MatchesRegex(name + " [0-9]+\\.[0-9]+\\.[0-9]+ \\(git [^)]+\\)\n"));
  return r.out.substr(std::min(r.out.size(), name.size() + 1));
}

TEST(ServerStartup, EveryProgramNamesTheSameBuild) {
  const Tools& tools = GetTools();
  const std::string version = VersionOf(tools.server, "phi3-server");
  EXPECT_EQ(VersionOf(tools.client, "phi3-client"), version);
  EXPECT_EQ(VersionOf(tools.mkmodel, "phi3-mkmodel"), version);
  EXPECT_EQ(VersionOf(tools.run, "phi3-run"), version);
}

TEST(ServerStartup, FlagsComeFromTheEnvironmentTooAndTheCommandLineWins) {
  const std::vector<std::string> env = {"PHI3_MODEL=/nonexistent/env.gguf", "PHI3_NO_AUTH=true"};
  CommandResult from_env = RunCommand({GetTools().server}, absl::Seconds(30), env);
  EXPECT_NE(from_env.exit_code, 0);
  EXPECT_THAT(from_env.err, HasSubstr("cannot load model /nonexistent/env.gguf"));
  CommandResult both =
      RunCommand({GetTools().server, "--model=/nonexistent/cli.gguf"}, absl::Seconds(30), env);
  EXPECT_THAT(both.err, HasSubstr("cannot load model /nonexistent/cli.gguf"));
}

TEST(ServerStartup, FailsFastOnAMissingModel) {
  CommandResult r = RunCommand({GetTools().server, "--model=/nonexistent/m.gguf", "--no-auth",
                                "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"},
                               absl::Seconds(30));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("cannot load model /nonexistent/m.gguf"));
}

TEST(ServerStartup, FailsFastOnACorruptModel) {
  const std::string path = ScratchDir() + "/garbage.gguf";
  std::ofstream(path) << "this is not a gguf file at all, just some bytes";
  CommandResult r = RunCommand({GetTools().server, "--model=" + path, "--no-auth",
                                "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"},
                               absl::Seconds(30));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("cannot load model"));
}

TEST(ServerStartup, RequiresAnAuthChoice) {
  CommandResult r = RunCommand({GetTools().server, "--model=" + TinyModel()}, absl::Seconds(30));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--api-keys FILE or --no-auth"));
}

// The server's own lines only (loading, then the failure: no gRPC log lines),
// `last` the last of them.
void ExpectOwnLinesEndingWith(const std::string& err, const std::string& last) {
  std::vector<std::string> lines = absl::StrSplit(err, '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines.empty());
  for (const std::string& line : lines) {
    EXPECT_THAT(line, ::testing::StartsWith("phi3-server: ")) << err;
  }
  EXPECT_EQ(lines.back(), last) << err;
}

TEST(ServerStartup, FailsFastOnTakenPorts) {
  int fd = -1;
  const int port = HoldFreePort(&fd);
  CommandResult grpc_taken = RunCommand(
      {GetTools().server, "--model=" + TinyModel(), "--no-auth",
       "--listen=127.0.0.1:" + std::to_string(port), "--metrics-listen=127.0.0.1:0"},
      absl::Seconds(30));
  EXPECT_NE(grpc_taken.exit_code, 0);
  ExpectOwnLinesEndingWith(grpc_taken.err, "phi3-server: cannot listen on 127.0.0.1:" +
                                               std::to_string(port) + ": address already in use");
  CommandResult metrics_taken = RunCommand(
      {GetTools().server, "--model=" + TinyModel(), "--no-auth", "--listen=127.0.0.1:0",
       "--metrics-listen=127.0.0.1:" + std::to_string(port)},
      absl::Seconds(30));
  EXPECT_NE(metrics_taken.exit_code, 0);
  ExpectOwnLinesEndingWith(metrics_taken.err, "phi3-server: cannot listen for metrics on 127.0.0.1:" +
                                                  std::to_string(port) +
                                                  ": address already in use");
  close(fd);
}

TEST_F(ServerTest, ModelInfoNamesTheServerBuild) {
  grpc::ClientContext context;
  v1::GetModelInfoResponse info;
  ASSERT_TRUE(stub_->GetModelInfo(&context, {}, &info).ok());
  EXPECT_EQ(absl::StrCat(info.server_version(), " (git ", info.server_revision(), ")\n"),
            VersionOf(GetTools().server, "phi3-server"));
}

TEST_F(ServerTest, LogShowsTheLoadAndWhatWasLoaded) {
  grpc::ClientContext context;
  v1::GetModelInfoResponse info;
  ASSERT_TRUE(stub_->GetModelInfo(&context, {}, &info).ok());
  const std::string log = server_->log();
  // Not a terminal: plain progress lines, each stage ending at 100%.
  EXPECT_THAT(log, HasSubstr("phi3-server: mapping and checking 100% ("));
  EXPECT_THAT(log, HasSubstr("phi3-server: hashing 100% ("));
  EXPECT_THAT(log, Not(HasSubstr("\r")));
  // The tiny model is all f32.
  EXPECT_THAT(log, HasSubstr(absl::StrCat("phi3-server: loaded ", info.name(), ": f32 x ")));
  EXPECT_THAT(log, HasSubstr(absl::StrCat("; context ", info.limits().context_size(), " of ",
                                          info.context_length(), " trained; sha256 ",
                                          info.file_sha256(), "\n")));
}

TEST_F(ServerTest, GreedyStreamEqualsPhi3Run) {
  for (const std::string prompt : {"The capital of France is", "Once upon a time, in a land"}) {
    CommandResult run = RunCommand({GetTools().run, "--model=" + TinyModel(), "--prompt=" + prompt,
                                    "--max-tokens=24", "--temperature=0", "--threads=1", "--json"},
                                   absl::Seconds(120));
    ASSERT_EQ(run.exit_code, 0) << run.err;
    absl::StatusOr<std::vector<int>> expected = JsonIntArrayField(run.out, "completion_tokens");
    absl::StatusOr<std::vector<int>> prompt_tokens = JsonIntArrayField(run.out, "prompt_tokens");
    absl::StatusOr<std::string> expected_text = JsonStringField(run.out, "text");
    ASSERT_TRUE(expected.ok() && prompt_tokens.ok() && expected_text.ok()) << run.out;

    Streamed s = GenerateAll(*stub_, Greedy(prompt, 24));
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    EXPECT_EQ(s.tokens, *expected) << prompt;
    EXPECT_EQ(s.text, *expected_text) << prompt;
    EXPECT_EQ(s.last.usage().prompt_tokens(), static_cast<int>(prompt_tokens->size()));
    EXPECT_EQ(s.last.usage().completion_tokens(), static_cast<int>(s.tokens.size()));
    EXPECT_GT(s.num_messages, 1);  // streamed as produced
  }
}

// Warm-up: a prefill_only Generate samples nothing and bills its prompt; the
// next request sharing the prefix gets it from the cache, with output equal
// to phi3-run's (no cache).
TEST_F(ServerTest, PrefillOnlyWarmsThePrefixCacheForTheNextGenerate) {
  const std::string prefix =
      "// file: warm.cc (cpp)\nint Add(int a, int b) {\n  return a + b;\n}\n\n"
      "int Multiply(int a, int b) {\n  int product = 0;\n  for (int i = 0; i < b; ++i) {\n";
  const std::string prompt = absl::StrCat(prefix, "    product");
  const double prefills_before =
      SumMetric(Scrape(), "phi3_prefill_requests_total", {"tenant=\"local\""});
  v1::GenerateRequest warm = Greedy(prefix, 0);
  warm.set_prefill_only(true);
  Streamed w = GenerateAll(*stub_, warm);
  ASSERT_TRUE(w.status.ok()) << w.status.error_message();
  EXPECT_EQ(w.num_messages, 1);
  EXPECT_TRUE(w.tokens.empty());
  EXPECT_EQ(w.last.finish_reason(), v1::FINISH_REASON_LENGTH);
  const int num_prefix = w.last.usage().prompt_tokens();
  EXPECT_GT(num_prefix, 40);
  EXPECT_EQ(w.last.usage().completion_tokens(), 0);
  EXPECT_GT(w.last.cost_usd(), 0);
  EXPECT_EQ(SumMetric(Scrape(), "phi3_prefill_requests_total", {"tenant=\"local\""}),
            prefills_before + 1);

  CommandResult run = RunCommand({GetTools().run, "--model=" + TinyModel(), "--prompt=" + prompt,
                                  "--max-tokens=12", "--temperature=0", "--threads=1", "--json"},
                                 absl::Seconds(120));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  absl::StatusOr<std::vector<int>> expected = JsonIntArrayField(run.out, "completion_tokens");
  ASSERT_TRUE(expected.ok()) << run.out;
  Streamed s = GenerateAll(*stub_, Greedy(prompt, 12));
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.tokens, *expected);
  // Every full 16-token block of the warmed prefix, but the one the prefix's
  // last token may re-tokenize differently at the seam.
  EXPECT_GE(s.last.usage().cached_prompt_tokens(), (num_prefix / 16 - 1) * 16);
}

TEST_F(ServerTest, ChatEqualsPhi3RunChat) {
  CommandResult run = RunCommand({GetTools().run, "--model=" + TinyModel(), "--chat",
                                  "--system=You are terse.", "--prompt=Name a color <|user|>",
                                  "--max-tokens=16", "--temperature=0", "--threads=1", "--json"},
                                 absl::Seconds(120));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  v1::ChatRequest req;
  auto* system = req.add_messages();
  system->set_role(v1::ChatMessage::ROLE_SYSTEM);
  system->set_content("You are terse.");
  auto* user = req.add_messages();
  user->set_role(v1::ChatMessage::ROLE_USER);
  user->set_content("Name a color <|user|>");
  req.mutable_sampling()->set_temperature(0);
  req.mutable_stop()->set_max_tokens(16);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub_->Chat(&context, req);
  std::vector<int> tokens;
  v1::GenerateResponse m, last;
  while (reader->Read(&m)) {
    tokens.insert(tokens.end(), m.token_ids().begin(), m.token_ids().end());
    if (m.finish_reason()) last = m;
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(tokens, *JsonIntArrayField(run.out, "completion_tokens"));
  EXPECT_EQ(last.usage().prompt_tokens(),
            static_cast<int>(JsonIntArrayField(run.out, "prompt_tokens")->size()));
}

TEST_F(ServerTest, ConcurrentClientsGetTheSameGreedyOutput) {
  const v1::GenerateRequest request = Greedy("Concurrency test prompt", 16);
  Streamed alone = GenerateAll(*stub_, request);
  ASSERT_TRUE(alone.status.ok());
  constexpr int kClients = 6;
  std::vector<Streamed> results(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto stub = NewStub(server_->address());
      results[i] = GenerateAll(*stub, i % 2 ? request : Greedy("Another prompt", 8 + i));
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(results[i].status.ok()) << results[i].status.error_message();
    if (i % 2) EXPECT_EQ(results[i].tokens, alone.tokens);
    else EXPECT_EQ(static_cast<int>(results[i].tokens.size()), 8 + i);
  }
}

TEST_F(ServerTest, CancelledStreamIsStoppedAndBilled) {
  const auto before = Scrape();
  v1::GenerateRequest req = Greedy("Cancel me", 3000);
  req.mutable_stop()->set_ignore_eos(true);
  grpc::ClientContext context;
  auto reader = stub_->Generate(&context, req);
  v1::GenerateResponse m;
  int received = 0;
  while (received < 3 && reader->Read(&m)) received += m.token_ids_size();
  context.TryCancel();
  while (reader->Read(&m)) received += m.token_ids_size();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The engine finishes it within a step; then the counters include it.
  std::map<std::string, double> after;
  for (int i = 0; i < 200; ++i) {
    after = Scrape();
    if (SumMetric(after, "phi3_requests_total", {"finish_reason=\"cancelled\""}) >
            SumMetric(before, "phi3_requests_total", {"finish_reason=\"cancelled\""}) &&
        SumMetric(after, "phi3_engine_running_requests") == 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_EQ(SumMetric(after, "phi3_requests_total", {"finish_reason=\"cancelled\""}) -
                SumMetric(before, "phi3_requests_total", {"finish_reason=\"cancelled\""}),
            1);
  const double billed = SumMetric(after, "phi3_completion_tokens_total") -
                        SumMetric(before, "phi3_completion_tokens_total");
  EXPECT_GE(billed, received);
  EXPECT_LT(billed, 3000);
  EXPECT_EQ(SumMetric(after, "phi3_engine_running_requests"), 0);
  // Still serving.
  EXPECT_TRUE(GenerateAll(*stub_, Greedy("still there?", 4)).status.ok());
}

TEST_F(ServerTest, CancelDuringPromptProcessingFreesTheRequest) {
  const auto before = Scrape();
  v1::GenerateRequest req;
  for (int i = 0; i < 3000; ++i) req.add_prompt_tokens(100 + (i * 7919) % 30000);
  req.mutable_sampling()->set_temperature(0);
  req.mutable_stop()->set_max_tokens(16);
  grpc::ClientContext context;
  auto reader = stub_->Generate(&context, req);
  // Cancel as soon as the engine has it: inside the 3000-token prefill.
  for (int i = 0; i < 400; ++i) {
    if (SumMetric(Scrape(), "phi3_engine_running_requests") +
            SumMetric(Scrape(), "phi3_engine_waiting_requests") > 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  context.TryCancel();
  v1::GenerateResponse m;
  while (reader->Read(&m)) {}
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  std::map<std::string, double> after;
  bool done = false;
  for (int i = 0; i < 400 && !done; ++i) {
    after = Scrape();
    done = SumMetric(after, "phi3_requests_total", {"finish_reason=\"cancelled\""}) >
               SumMetric(before, "phi3_requests_total", {"finish_reason=\"cancelled\""}) &&
           SumMetric(after, "phi3_engine_running_requests") == 0 &&
           SumMetric(after, "phi3_engine_waiting_requests") == 0;
    if (!done) absl::SleepFor(absl::Milliseconds(25));
  }
  ASSERT_TRUE(done);
  // Billed: the prompt tokens processed before the cancel (whole 512-token
  // prefill chunks, --max-batched-tokens), and (normally no) completion tokens.
  const double prompt = SumMetric(after, "phi3_prompt_tokens_total") -
                        SumMetric(before, "phi3_prompt_tokens_total");
  const double completion = SumMetric(after, "phi3_completion_tokens_total") -
                            SumMetric(before, "phi3_completion_tokens_total");
  EXPECT_LT(completion, 16);
  if (completion > 0) {
    EXPECT_EQ(prompt, 3000);
  } else {
    EXPECT_LT(prompt, 3000);  // the last chunk samples the first token in the same step
    EXPECT_EQ(static_cast<int>(prompt) % 512, 0) << prompt;
  }
  if (completion > 0) std::printf("note: cancel landed after the prefill (%g tokens)\n", completion);
  EXPECT_EQ(SumMetric(after, "phi3_kv_cache_used_blocks"), 0);
  EXPECT_TRUE(GenerateAll(*stub_, Greedy("after a cancelled prefill", 4)).status.ok());
}

TEST_F(ServerTest, DeadlineStopsGenerationAndServerKeepsServing) {
  v1::GenerateRequest req = Greedy("Deadline", 3000);
  req.mutable_stop()->set_ignore_eos(true);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  Streamed s = GenerateAll(*stub_, req, "", &context);
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(s.tokens.size(), 3000u);
  bool idle = false;
  for (int i = 0; i < 200 && !idle; ++i) {
    const auto m = Scrape();
    idle = SumMetric(m, "phi3_active_streams") == 0 && SumMetric(m, "phi3_engine_running_requests") == 0;
    if (!idle) absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_TRUE(idle);
  EXPECT_TRUE(GenerateAll(*stub_, Greedy("after the deadline", 4)).status.ok());
}

TEST_F(ServerTest, EveryValidationErrorIsInvalidArgumentWithNumbers) {
  struct Case {
    std::string name;
    std::function<void(v1::GenerateRequest*)> edit;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"empty", [](auto* r) { r->set_prompt(""); }, "prompt is empty (0 tokens)"},
      {"too long", [](auto* r) { r->mutable_stop()->set_max_tokens(4095); },
       "exceeds the context size of 4096"},
      {"temperature", [](auto* r) { r->mutable_sampling()->set_temperature(7); },
       "sampling.temperature must be in [0, 2], got 7"},
      {"top_k", [](auto* r) { r->mutable_sampling()->set_top_k(-3); }, "got -3"},
      {"top_p", [](auto* r) { r->mutable_sampling()->set_top_p(1.5); }, "sampling.top_p must be in (0, 1], got 1.5"},
      {"min_p", [](auto* r) { r->mutable_sampling()->set_min_p(-0.5); }, "sampling.min_p"},
      {"repetition", [](auto* r) { r->mutable_sampling()->set_repetition_penalty(0); }, "sampling.repetition_penalty"},
      {"repetition max", [](auto* r) { r->mutable_sampling()->set_repetition_penalty(10.5); },
       "sampling.repetition_penalty must be in (0, 10], got 10.5"},
      {"presence", [](auto* r) { r->mutable_sampling()->set_presence_penalty(2.5); }, "sampling.presence_penalty"},
      {"frequency", [](auto* r) { r->mutable_sampling()->set_frequency_penalty(-2.5); }, "sampling.frequency_penalty"},
      {"top_logprobs", [](auto* r) { r->mutable_sampling()->set_top_logprobs(21); }, "got 21"},
      {"max_tokens", [](auto* r) { r->mutable_stop()->set_max_tokens(-1); }, "stop.max_tokens"},
      {"stop count", [](auto* r) { for (int i = 0; i < 17; ++i) r->mutable_stop()->add_stop("x"); },
       "too many stop strings: 17 given, at most 16"},
      {"empty stop", [](auto* r) { r->mutable_stop()->add_stop(""); }, "stop.stop_strings[0] is empty"},
      {"stop token", [](auto* r) { r->mutable_stop()->add_stop_token_ids(40000); },
       "stop.stop_token_ids[0] = 40000 is outside the vocabulary [0, 32064)"},
      {"prompt ids", [](auto* r) { r->set_prompt(""); r->add_prompt_tokens(1); r->add_prompt_tokens(99999); },
       "prompt_tokens[1] = 99999"},
      {"both", [](auto* r) { r->add_prompt_tokens(1); }, "not both"},
  };
  for (const Case& c : cases) {
    v1::GenerateRequest req = Greedy("valid prompt", 4);
    c.edit(&req);
    Streamed s = GenerateAll(*stub_, req);
    EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_THAT(s.status.error_message(), HasSubstr(c.message)) << c.name;
    EXPECT_EQ(s.num_messages, 0) << c.name;
  }
  // Chat: no messages, bad role.
  v1::ChatRequest chat;
  grpc::ClientContext c1;
  auto r1 = stub_->Chat(&c1, chat);
  v1::GenerateResponse m;
  while (r1->Read(&m)) {}
  grpc::Status s1 = r1->Finish();
  EXPECT_EQ(s1.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s1.error_message(), HasSubstr("messages is empty"));
  chat.add_messages()->set_content("no role");
  grpc::ClientContext c2;
  auto r2 = stub_->Chat(&c2, chat);
  while (r2->Read(&m)) {}
  grpc::Status s2 = r2->Finish();
  EXPECT_EQ(s2.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s2.error_message(), HasSubstr("messages[0].role"));
}

TEST(ServerQueue, FullQueueIsResourceExhausted) {
  std::vector<std::string> args = BasicServerArgs();
  args.push_back("--max-running=1");
  args.push_back("--max-waiting=1");
  auto server = ServerProcess::Start(GetTools().server, args);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = NewStub((*server)->address());
  v1::GenerateRequest long_request = Greedy("Occupy the engine", 3000);
  long_request.mutable_stop()->set_ignore_eos(true);
  grpc::ClientContext c1, c2;
  auto running = stub->Generate(&c1, long_request);
  v1::GenerateResponse m;
  ASSERT_TRUE(running->Read(&m));  // it runs
  // Keep reading it, or the server would cancel it for falling behind and
  // the waiting request would start running.
  std::thread drain_running([&running] {
    v1::GenerateResponse r;
    while (running->Read(&r)) {}
  });
  // A request counts as waiting until the engine loop first takes it in, so
  // submit the second only once the first is running.
  bool first_running = false;
  for (int i = 0; i < 200 && !first_running; ++i) {
    auto body = HttpGet((*server)->metrics_address(), "/metrics");
    auto metrics = ParseMetrics(body.ok() ? *body : "");
    first_running = body.ok() && SumMetric(metrics, "phi3_engine_running_requests") == 1 &&
                    SumMetric(metrics, "phi3_engine_waiting_requests") == 0;
    if (!first_running) absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_TRUE(first_running);
  auto waiting = stub->Generate(&c2, long_request);
  // Wait until the second one is queued in the engine.
  bool queued = false;
  for (int i = 0; i < 200 && !queued; ++i) {
    auto body = HttpGet((*server)->metrics_address(), "/metrics");
    queued = body.ok() && SumMetric(ParseMetrics(*body), "phi3_engine_waiting_requests") == 1;
    if (!queued) absl::SleepFor(absl::Milliseconds(25));
  }
  if (!queued) {
    c1.TryCancel();
    drain_running.join();
  }
  ASSERT_TRUE(queued);
  Streamed third = GenerateAll(*stub, Greedy("no room", 4));
  EXPECT_EQ(third.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_FALSE(third.status.error_message().empty());
  c1.TryCancel();
  c2.TryCancel();
  drain_running.join();
  while (waiting->Read(&m)) {}
  running->Finish();
  waiting->Finish();
  // Both leave the engine within a step; then there is room again.
  bool idle = false;
  for (int i = 0; i < 200 && !idle; ++i) {
    auto body = HttpGet((*server)->metrics_address(), "/metrics");
    auto metrics = ParseMetrics(body.ok() ? *body : "");
    idle = body.ok() && SumMetric(metrics, "phi3_engine_waiting_requests") == 0 &&
           SumMetric(metrics, "phi3_engine_running_requests") == 0;
    if (!idle) absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_TRUE(idle);
  Streamed again = GenerateAll(*stub, Greedy("room again", 4));
  EXPECT_TRUE(again.status.ok()) << again.status.error_message();
}

}  // namespace
}  // namespace phi3::integration
