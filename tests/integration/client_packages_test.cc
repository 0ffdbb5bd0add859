// The clients as a user installs them, against a real server over TLS with an
// API key: the Python package installed offline into a fresh venv (its
// console script and the example), and the TypeScript npm package installed
// from its tarball offline (a typed consumer compiled against it, and the
// example). Each streams the same greedy tokens as the C++ stub.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_env.h"

namespace phi3::integration {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kKey[] = "key-packages";

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A --help run: exit status 0 and each of `options` in the text.
void ExpectListsOptions(const CommandResult& help, const std::vector<std::string>& options) {
  EXPECT_EQ(help.exit_code, 0) << help.err;
  for (const std::string& option : options) EXPECT_THAT(help.out, HasSubstr(option));
}

class ClientPackagesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cert_ = new std::string(ScratchDir() + "/packages_cert.pem");
    const std::string key = ScratchDir() + "/packages_key.pem";
    const absl::Status cert_status = WriteSelfSignedCert(*cert_, key);
    ASSERT_TRUE(cert_status.ok()) << cert_status;
    const std::string keys = ScratchDir() + "/packages_keys.txt";
    std::ofstream(keys) << kKey << " packages\n";
    auto server = ServerProcess::Start(
        GetTools().server, {"--model=" + TinyModel(), "--api-keys=" + keys, "--threads=1",
                            "--tls-cert=" + *cert_, "--tls-key=" + key});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete cert_;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr); }

  // Greedy tokens for `prompt` from the C++ stub, over the same TLS + key.
  std::vector<int> Reference(const std::string& prompt, int max_tokens) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadText(*cert_);
    auto stub = v1::Phi3::NewStub(grpc::CreateChannel(server_->address(),
                                                      grpc::SslCredentials(ssl)));
    Streamed s = GenerateAll(*stub, Greedy(prompt, max_tokens), kKey);
    EXPECT_TRUE(s.status.ok()) << s.status.error_message();
    return s.tokens;
  }
  // The connection flags every client here takes.
  std::vector<std::string> Connect() {
    return {"--addr", server_->address(), "--ca-cert", *cert_, "--api-key", kKey};
  }

  static ServerProcess* server_;
  static std::string* cert_;
};

ServerProcess* ClientPackagesTest::server_ = nullptr;
std::string* ClientPackagesTest::cert_ = nullptr;

TEST_F(ClientPackagesTest, PythonPackageInstallsOfflineAndTalksTls) {
  // A fresh venv that sees Debian's grpcio/protobuf/setuptools; pip builds the
  // package (protoc generates the stubs) without any index.
  const std::string venv = ScratchDir() + "/venv";
  CommandResult made = RunCommand({"/usr/bin/python3", "-m", "venv", "--system-site-packages",
                                   "--without-pip", venv}, absl::Seconds(60));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  CommandResult pip = RunCommand(
      {venv + "/bin/python", "-m", "pip", "install", "--no-index", "--no-build-isolation",
       "--no-cache-dir", "--disable-pip-version-check", "--quiet",
       GetTools().source_dir + "/clients/python"},
      absl::Seconds(120));
  ASSERT_EQ(pip.exit_code, 0) << pip.out << pip.err;
  const std::string cli = venv + "/bin/phi3serve-client";
  ASSERT_TRUE(fs::exists(cli));

  std::vector<std::string> argv = {cli};
  for (const std::string& f : Connect()) argv.push_back(f);
  auto with = [&argv](std::vector<std::string> more) {
    std::vector<std::string> all = argv;
    all.insert(all.end(), more.begin(), more.end());
    return RunCommand(all, absl::Seconds(60));
  };
  CommandResult gen = with({"generate", "--prompt", "Packaged Python", "--max-tokens", "6",
                            "--temperature", "0", "--json"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_EQ(*JsonIntArrayField(gen.out, "completion_tokens"), Reference("Packaged Python", 6));
  EXPECT_EQ(*JsonStringField(gen.out, "finish_reason"), "LENGTH");
  EXPECT_GT(*JsonNumberField(gen.out, "cost_usd"), 0);

  // The same flags print the same text and log-probability lines as phi3-client.
  const std::vector<std::string> logprobs = {"generate", "--prompt-tokens", "1,15043",
                                             "--max-tokens", "3", "--temperature", "0",
                                             "--top-logprobs", "2"};
  CommandResult py_logprobs = with(logprobs);
  std::vector<std::string> cpp = {GetTools().client};
  for (const std::string& f : Connect()) cpp.push_back(f);
  cpp.insert(cpp.end(), logprobs.begin(), logprobs.end());
  CommandResult cpp_logprobs = RunCommand(cpp, absl::Seconds(60));
  ASSERT_EQ(py_logprobs.exit_code, 0) << py_logprobs.err;
  ASSERT_EQ(cpp_logprobs.exit_code, 0) << cpp_logprobs.err;
  EXPECT_THAT(py_logprobs.err, HasSubstr("[token "));
  EXPECT_EQ(py_logprobs.err, cpp_logprobs.err);
  EXPECT_EQ(py_logprobs.out, cpp_logprobs.out);

  CommandResult chat = with({"chat", "--system", "Be brief.", "--user", "Hi", "--max-tokens",
                             "3", "--temperature", "0", "--stats"});
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_THAT(chat.err, HasSubstr("completion_tokens="));
  CommandResult info = with({"info", "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(*JsonStringField(info.out, "architecture"), "phi3");
  CommandResult tok = with({"tokenize", "--text", "Hello world", "--json"});
  ASSERT_EQ(tok.exit_code, 0) << tok.err;
  EXPECT_EQ(*JsonIntArrayField(tok.out, "token_ids"), (std::vector<int>{1, 15043, 3186}));

  // A wrong key and a plaintext connection to the TLS port both fail with exit 1.
  CommandResult wrong_key = RunCommand(
      {cli, "--addr", server_->address(), "--ca-cert", *cert_, "--api-key", "nope", "info"},
      absl::Seconds(60));
  EXPECT_EQ(wrong_key.exit_code, 1);
  EXPECT_THAT(wrong_key.err, HasSubstr("UNAUTHENTICATED"));
  CommandResult plaintext = RunCommand(
      {cli, "--addr", server_->address(), "--api-key", kKey, "--timeout", "5", "info"},
      absl::Seconds(60));
  EXPECT_EQ(plaintext.exit_code, 1);
  EXPECT_THAT(plaintext.err, HasSubstr("UNAVAILABLE"));

  ExpectListsOptions(RunCommand({cli, "--help"}, absl::Seconds(30)),
                     {"--addr", "--api-key", "--tls", "--ca-cert", "--tls-server-name",
                      "--timeout", "--route-key", "--prompt", "--prompt-tokens", "--text",
                      "--no-bos", "--parse-special", "--user", "--system", "--assistant",
                      "--max-tokens", "--temperature", "--top-k", "--top-p", "--min-p",
                      "--repetition-penalty", "--presence-penalty", "--frequency-penalty",
                      "--seed", "--stop", "--stop-token-id", "--ignore-eos", "--logprobs",
                      "--top-logprobs", "--json", "--stats"});

  // The example runs on the installed package too.
  std::vector<std::string> example = {venv + "/bin/python",
                                      GetTools().source_dir + "/clients/python/example.py"};
  ExpectListsOptions(RunCommand({example[0], example[1], "--help"}, absl::Seconds(30)),
                     {"--addr", "--api-key", "--tls", "--ca-cert", "--tls-server-name",
                      "--prompt", "--max-tokens", "--temperature", "--seed", "--timeout",
                      "--json"});
  for (const std::string& f : Connect()) example.push_back(f);
  for (const char* f : {"--tls", "--prompt", "Example over TLS", "--max-tokens", "5", "--json"}) {
    example.push_back(f);
  }
  CommandResult ex = RunCommand(example, absl::Seconds(60));
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  EXPECT_EQ(*JsonIntArrayField(ex.out, "completion_tokens"), Reference("Example over TLS", 5));
}

TEST_F(ClientPackagesTest, TypeScriptPackageInstallsOfflineAndTalksTls) {
  const std::string tarball = PHI3_TS_PACKAGE;
  ASSERT_TRUE(fs::exists(tarball))
      << tarball << " missing: the phi3_ts_client target builds it (is package.json's "
      << "version the project's?)";
  // What the tarball ships: the compiled client and example, their types
  // (generated ones included) and the .proto; no sources or node_modules.
  CommandResult list = RunCommand({"/usr/bin/tar", "tzf", tarball}, absl::Seconds(30));
  ASSERT_EQ(list.exit_code, 0) << list.err;
  for (const char* file : {"package/package.json", "package/dist/index.js",
                           "package/dist/index.d.ts", "package/dist/example.js",
                           "package/dist/generated/phi3/v1/Phi3.d.ts",
                           "package/dist/generated/phi3/v1/GenerateRequest.d.ts",
                           "package/proto/phi3/v1/phi3.proto"}) {
    EXPECT_THAT(list.out, HasSubstr(std::string(file) + "\n"));
  }
  EXPECT_THAT(list.out, ::testing::Not(HasSubstr("package/src/")));
  EXPECT_THAT(list.out, ::testing::Not(HasSubstr("node_modules")));

  // A TypeScript project that already has the package's dependencies (a copy
  // of the client's node_modules as npm ci installed them) installs the tarball with
  // npm offline and an empty cache: nothing is fetched. A copy, not hard
  // links: npm rewrites node_modules/.package-lock.json in place.
  const std::string ts_dir = GetTools().source_dir + "/clients/typescript";
  const std::string app = ScratchDir() + "/ts_app";
  fs::create_directories(app);
  std::ofstream(app + "/package.json")
      << R"({"name": "app", "private": true,)"
      << R"( "devDependencies": {"@types/node": "*", "typescript": "*"}})" << "\n";
  fs::copy(ts_dir + "/node_modules", app + "/node_modules", fs::copy_options::recursive);
  CommandResult install = RunCommand(
      {"/usr/bin/npm", "install", "--prefix", app, "--offline", "--cache", app + "/npm-cache",
       "--ignore-scripts", "--no-audit", "--no-fund", tarball},
      absl::Seconds(120));
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  const std::string installed = app + "/node_modules/phi3serve-client";
  ASSERT_TRUE(fs::exists(installed + "/dist/index.d.ts"));

  // A strict TypeScript consumer type-checks against the package's types.
  std::ofstream(app + "/consumer.ts") << R"(import { Phi3Client, Completion, GenerateRequest } from "phi3serve-client";
const [address, caCertFile, apiKey] = process.argv.slice(2);
const request: GenerateRequest = { prompt: "Typed consumer", sampling: { temperature: 0 },
                                   stop: { max_tokens: 6 } };
async function main(): Promise<void> {
  const client = new Phi3Client(address, { apiKey, caCertFile, timeoutMs: 60000 });
  const done: Completion = await client.generate(request).collect();
  const info = await client.info();
  const ids: number[] = await client.tokenize({ text: "Hello world" });
  client.close();
  console.log(JSON.stringify({ ...done, architecture: info.architecture, ids }));
}
main().catch((e: Error) => { console.error(e.message); process.exitCode = 1; });
)";
  CommandResult tsc = RunCommand(
      {"/usr/bin/node", app + "/node_modules/typescript/bin/tsc", "--strict", "--target",
       "ES2020", "--module", "commonjs", "--types", "node", "--typeRoots",
       app + "/node_modules/@types", "--outDir", app,
       app + "/consumer.ts"},
      absl::Seconds(120));
  ASSERT_EQ(tsc.exit_code, 0) << tsc.out << tsc.err;
  std::vector<std::string> consumer = {"/usr/bin/node", app + "/consumer.js",
                                       server_->address(), *cert_, kKey};
  CommandResult r = RunCommand(consumer, absl::Seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(*JsonIntArrayField(r.out, "completion_tokens"), Reference("Typed consumer", 6));
  EXPECT_EQ(*JsonStringField(r.out, "finish_reason"), "LENGTH");
  EXPECT_EQ(*JsonStringField(r.out, "architecture"), "phi3");
  EXPECT_EQ(*JsonIntArrayField(r.out, "ids"), (std::vector<int>{1, 15043, 3186}));

  // The example from the installed package: --help, then TLS + key.
  const std::string example = installed + "/dist/example.js";
  ExpectListsOptions(RunCommand({"/usr/bin/node", example, "--help"}, absl::Seconds(30)),
                     {"--addr", "--api-key", "--tls", "--ca-cert", "--tls-server-name",
                      "--prompt", "--max-tokens", "--temperature", "--seed", "--timeout",
                      "--json", "--help"});
  std::vector<std::string> argv = {"/usr/bin/node", example};
  for (const std::string& f : Connect()) argv.push_back(f);
  for (const char* f : {"--tls", "--prompt", "TypeScript over TLS", "--max-tokens", "5",
                        "--json"}) {
    argv.push_back(f);
  }
  CommandResult ex = RunCommand(argv, absl::Seconds(60));
  ASSERT_EQ(ex.exit_code, 0) << ex.err;
  EXPECT_EQ(*JsonIntArrayField(ex.out, "completion_tokens"),
            Reference("TypeScript over TLS", 5));
  CommandResult wrong_key = RunCommand(
      {"/usr/bin/node", example, "--addr", server_->address(), "--ca-cert", *cert_,
       "--api-key", "nope"},
      absl::Seconds(60));
  EXPECT_EQ(wrong_key.exit_code, 1);
  EXPECT_THAT(wrong_key.err, HasSubstr("UNAUTHENTICATED"));
  EXPECT_EQ(RunCommand({"/usr/bin/node", example, "--no-such-flag"}, absl::Seconds(30)).exit_code,
            2);
}

}  // namespace
}  // namespace phi3::integration
