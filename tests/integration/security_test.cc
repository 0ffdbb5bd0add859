// The real phi3-server as an attacker or a careless operator meets it:
// per-tenant prefix caches, keys files that yield no key, flags out of range,
// clients that stop reading.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_env.h"

namespace phi3::integration {
namespace {

using ::testing::HasSubstr;

// A prompt of a few KV blocks, different per test so no cache is warm.
v1::GenerateRequest LongPrompt(const std::string& tag) {
  std::string text = tag;
  for (int i = 0; i < 40; ++i) text += " the quick brown fox " + std::to_string(i);
  return Greedy(text, 2);
}

int CachedTokens(v1::Phi3::Stub& stub, const v1::GenerateRequest& request,
                 const std::string& key) {
  Streamed s = GenerateAll(stub, request, key);
  EXPECT_TRUE(s.status.ok()) << s.status.error_message();
  return s.last.usage().cached_prompt_tokens();
}

std::string WriteKeys(const std::string& name, const std::string& contents) {
  const std::string path = ScratchDir() + "/" + name;
  std::ofstream(path) << contents;
  return path;
}

TEST(Isolation, TenantsShareThePrefixCacheOnlyWithinAGroup) {
  const std::string keys = WriteKeys(
      "isolation_keys.txt", "key-a a\nkey-b b\nkey-c c group=team\nkey-d d group=team\n");
  auto server = ServerProcess::Start(
      GetTools().server, {"--model=" + TinyModel(), "--api-keys=" + keys, "--threads=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = NewStub((*server)->address());
  const v1::GenerateRequest prompt = LongPrompt("isolation");
  EXPECT_EQ(CachedTokens(*stub, prompt, "key-a"), 0);
  EXPECT_EQ(CachedTokens(*stub, prompt, "key-b"), 0);  // A's prompt is invisible to B
  EXPECT_GT(CachedTokens(*stub, prompt, "key-a"), 0);  // but cached for A
  EXPECT_EQ(CachedTokens(*stub, prompt, "key-c"), 0);
  EXPECT_GT(CachedTokens(*stub, prompt, "key-d"), 0);  // C and D share group "team"
}

TEST(Isolation, IsolateTenantsFalseSharesOneCache) {
  const std::string keys = WriteKeys("shared_keys.txt", "key-a a\nkey-b b\n");
  auto server = ServerProcess::Start(GetTools().server,
                                     {"--model=" + TinyModel(), "--api-keys=" + keys,
                                      "--threads=1", "--isolate-tenants=false"});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT((*server)->log(), HasSubstr("all tenants share one prefix cache"));
  auto stub = NewStub((*server)->address());
  const v1::GenerateRequest prompt = LongPrompt("shared");
  EXPECT_EQ(CachedTokens(*stub, prompt, "key-a"), 0);
  EXPECT_GT(CachedTokens(*stub, prompt, "key-b"), 0);
}

TEST(Keys, StartupWithoutAUsableKeyRefusesWithOneLine) {
  const std::string dir = ScratchDir() + "/keys_dir";
  mkdir(dir.c_str(), 0700);
  for (const std::string& path : {WriteKeys("empty_keys.txt", ""),
                                  WriteKeys("comment_keys.txt", "# nobody yet\n\n"), dir}) {
    CommandResult r = RunCommand({GetTools().server, "--model=" + TinyModel(),
                                  "--api-keys=" + path, "--listen=127.0.0.1:0",
                                  "--metrics-listen=127.0.0.1:0"},
                                 absl::Seconds(30));
    EXPECT_NE(r.exit_code, 0) << path;
    EXPECT_THAT(r.err, HasSubstr("no usable API key, not starting")) << path;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(Keys, ReloadThatYieldsNoKeyKeepsTheCurrentKeys) {
  const std::string keys = WriteKeys("reload_keys.txt", "key-a a\n");
  auto server = ServerProcess::Start(
      GetTools().server, {"--model=" + TinyModel(), "--api-keys=" + keys, "--threads=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = NewStub((*server)->address());
  int reloads = 0;
  auto reload_and_check = [&](const std::string& why) {
    (*server)->Signal(SIGHUP);
    ++reloads;
    // Each refused reload logs one "keeping" line.
    bool logged = false;
    for (int i = 0; i < 200 && !logged; ++i) {
      const std::string log = (*server)->log();
      size_t count = 0;
      for (size_t at = log.find("keeping the current 1 API keys"); at != std::string::npos;
           at = log.find("keeping the current 1 API keys", at + 1)) {
        ++count;
      }
      logged = static_cast<int>(count) == reloads;
      if (!logged) absl::SleepFor(absl::Milliseconds(25));
    }
    EXPECT_TRUE(logged) << why << "\n" << (*server)->log();
    EXPECT_TRUE(GenerateAll(*stub, Greedy("hi", 2), "key-a").status.ok()) << why;
  };
  std::ofstream(keys) << "";
  reload_and_check("empty file");
  std::ofstream(keys) << "# all keys revoked by mistake\n";
  reload_and_check("comments only");
  std::remove(keys.c_str());
  mkdir(keys.c_str(), 0700);
  reload_and_check("a directory");
  rmdir(keys.c_str());
  reload_and_check("missing");
  EXPECT_THAT((*server)->log(), HasSubstr("not a regular file"));
}

TEST(Flags, OutOfRangeValuesFailWithOneLine) {
  struct Case {
    std::string flag;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"--threads=100000", "--threads must be in [0, "},
      {"--listen=127.0.0.1", "--listen must be HOST:PORT"},
      {"--metrics-listen=127.0.0.1:99999", "--metrics-listen must be HOST:PORT"},
      {"--price-input=-1", "--price-input must be a finite price >= 0"},
      {"--price-output=nan", "--price-output must be a finite price >= 0"},
      {"--stream-idle-timeout=0s", "--stream-idle-timeout must be at least 1ms"},
      {"--max-running=0", "max_running_sequences = 0 is out of range"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {GetTools().server, "--model=" + TinyModel(), "--no-auth"};
    if (c.flag.rfind("--listen", 0) != 0) argv.push_back("--listen=127.0.0.1:0");
    if (c.flag.rfind("--metrics-listen", 0) != 0) argv.push_back("--metrics-listen=127.0.0.1:0");
    argv.push_back(c.flag);
    CommandResult r = RunCommand(argv, absl::Seconds(30));
    EXPECT_NE(r.exit_code, 0) << c.flag;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.flag;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.flag << ": " << r.err;
  }
}

TEST(Streams, AClientThatStopsReadingIsCancelledAndItsSlotFreed) {
  std::vector<std::string> args = BasicServerArgs();
  args.push_back("--stream-idle-timeout=1s");
  auto server = ServerProcess::Start(GetTools().server, args);
  ASSERT_TRUE(server.ok()) << server.status();
  auto active = [&] {
    absl::StatusOr<std::string> body = HttpGet((*server)->metrics_address(), "/metrics");
    return body.ok() ? SumMetric(ParseMetrics(*body), "phi3_active_streams") : -1;
  };
  // A small flow-control window, and no reads at all.
  grpc::ChannelArguments channel_args;
  channel_args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  channel_args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  auto stub = v1::Phi3::NewStub(grpc::CreateCustomChannel(
      (*server)->address(), grpc::InsecureChannelCredentials(), channel_args));
  constexpr int kStreams = 4;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>>> readers;
  for (int i = 0; i < kStreams; ++i) {
    v1::GenerateRequest request = Greedy("never read " + std::to_string(i), 600);
    request.mutable_stop()->set_ignore_eos(true);
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    readers.push_back(stub->Generate(contexts.back().get(), request));
  }
  bool all_open = false;
  for (int i = 0; i < 400 && !all_open; ++i) {
    all_open = active() == kStreams;
    if (!all_open) absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_TRUE(all_open);
  bool idle = false;
  for (int i = 0; i < 1200 && !idle; ++i) {  // up to 60 s (600 tokens, then 1 s idle)
    idle = active() == 0;
    if (!idle) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(idle) << (*server)->log();
  for (auto& reader : readers) {
    v1::GenerateResponse m;
    while (reader->Read(&m)) {}
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  absl::StatusOr<std::string> body = HttpGet((*server)->metrics_address(), "/metrics");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(SumMetric(ParseMetrics(*body), "phi3_engine_running_requests"), 0);
  EXPECT_TRUE(GenerateAll(*NewStub((*server)->address()), Greedy("still serving", 2)).status.ok());
}

}  // namespace
}  // namespace phi3::integration
