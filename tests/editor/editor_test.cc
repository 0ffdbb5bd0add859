// The phi3 language server (clients/lsp/dist/server.js) against the real
// phi3-server on the tiny generated model: the node LSP client checks of
// lsp_e2e_test.js (completion == Generate, cancellation frees the slot,
// warm-up, the typing replay, explain/fix), and headless Neovim 0.7 with the
// shipped clients/nvim/phi3.lua (nvim_test.lua); TLS and API keys; the route
// key on every call, seen by the fleet router (deploy/router, HAProxy).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_env.h"

namespace phi3::integration {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class EditorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = ServerProcess::Start(GetTools().server, BasicServerArgs());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(std::filesystem::exists(lsp_dir_ + "/dist/server.js"))
        << "the language server is not built: npm ci --ignore-scripts in clients/lsp, then "
           "build target phi3_lsp (scripts/setup.sh --tests does both)";
  }
  static ServerProcess* server_;
  const std::string source_ = GetTools().source_dir;
  const std::string lsp_dir_ = source_ + "/clients/lsp";
};
ServerProcess* EditorTest::server_ = nullptr;

TEST_F(EditorTest, NodeLspClientChecks) {
  CommandResult r =
      RunCommand({PHI3_NODE_PATH, source_ + "/tests/editor/lsp_e2e_test.js", "--server-js",
                  lsp_dir_ + "/dist/server.js", "--addr", server_->address(), "--metrics",
                  server_->metrics_address(), "--proto", source_ + "/proto/phi3/v1/phi3.proto"},
                 absl::Seconds(150), {"NODE_PATH=" + lsp_dir_ + "/node_modules"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* check : {"ok completion_equals_generate", "ok cancel_frees_the_slot",
                            "ok warmup_gives_cached_tokens", "ok typing_replay",
                            "ok debounce_only_within_bursts", "ok commands"}) {
    EXPECT_THAT(r.out, HasSubstr(check));
  }
  std::printf("%s", r.out.c_str());
}

TEST_F(EditorTest, TlsAndApiKey) {
  const std::string dir = ScratchDir();
  const std::string cert = dir + "/editor_cert.pem", key = dir + "/editor_key.pem";
  const std::string keys = dir + "/editor_keys.txt";
  const absl::Status cert_status = WriteSelfSignedCert(cert, key);
  ASSERT_TRUE(cert_status.ok()) << cert_status;
  std::ofstream(keys) << "editor-key-789 editor\n";
  auto server = ServerProcess::Start(GetTools().server,
                                     {"--model=" + TinyModel(), "--api-keys=" + keys, "--threads=1",
                                      "--tls-cert=" + cert, "--tls-key=" + key});
  ASSERT_TRUE(server.ok()) << server.status();
  CommandResult r = RunCommand(
      {PHI3_NODE_PATH, source_ + "/tests/editor/lsp_e2e_test.js", "--only", "tlsAndApiKey",
       "--server-js", lsp_dir_ + "/dist/server.js", "--addr", (*server)->address(), "--metrics",
       (*server)->metrics_address(), "--proto", source_ + "/proto/phi3/v1/phi3.proto", "--ca-cert",
       cert, "--api-key", "editor-key-789"},
      absl::Seconds(60), {"NODE_PATH=" + lsp_dir_ + "/node_modules"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ok tls_and_api_key"));
}

TEST_F(EditorTest, RouteKeyOnEveryCallThroughTheRouter) {
  ASSERT_STRNE(PHI3_HAPROXY_PATH, "")
      << "haproxy not found: install Debian's haproxy (scripts/deps/test-apt.txt)";
  CommandResult r =
      RunCommand({PHI3_NODE_PATH, source_ + "/tests/editor/lsp_e2e_test.js", "--only", "routeKey",
                  "--server-js", lsp_dir_ + "/dist/server.js", "--addr", server_->address(),
                  "--metrics", server_->metrics_address(), "--proto",
                  source_ + "/proto/phi3/v1/phi3.proto", "--haproxy", PHI3_HAPROXY_PATH},
                 absl::Seconds(90), {"NODE_PATH=" + lsp_dir_ + "/node_modules"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ok route_key_on_every_call"));
  std::printf("%s", r.out.c_str());
}

TEST_F(EditorTest, NeovimWithTheShippedConfig) {
  ASSERT_STRNE(PHI3_NVIM_PATH, "")
      << "nvim not found: install Debian's neovim (scripts/deps/test-apt.txt)";
  const std::string file = ScratchDir() + "/nvim_case.py";
  std::ofstream(file) << "def add(a, b):\n    total = a +\n    return total\n";
  const std::string out = ScratchDir() + "/nvim_out.txt";
  CommandResult r = RunCommand(
      {PHI3_NVIM_PATH, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c",
       "luafile " + source_ + "/tests/editor/nvim_test.lua"},
      absl::Seconds(90),
      {"PHI3_NVIM_CONFIG=" + source_ + "/clients/nvim/phi3.lua",
       "PHI3_LSP_SERVER=" + lsp_dir_ + "/dist/server.js", "PHI3_ADDR=" + server_->address(),
       "PHI3_TEST_FILE=" + file, "PHI3_NVIM_OUT=" + out});
  std::stringstream result;
  result << std::ifstream(out).rdbuf();
  EXPECT_EQ(r.exit_code, 0) << result.str() << r.out << r.err;
  EXPECT_THAT(result.str(), HasSubstr("ok completion inserted"));
  EXPECT_THAT(result.str(), HasSubstr("ok nvim 0."));
  EXPECT_THAT(result.str(), Not(HasSubstr("FAILED")));
  std::printf("%s", result.str().c_str());
}

}  // namespace
}  // namespace phi3::integration
