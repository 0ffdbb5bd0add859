#include "cli/flags.h"

#include <cstdlib>

#include "absl/flags/flag.h"
#include "cli/version.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, test_model, "", "Model file.");
ABSL_FLAG(std::string, test_listen, "127.0.0.1:1", "Address.");
ABSL_FLAG(int, test_threads, 0, "Threads; 0 = all.");
ABSL_FLAG(bool, test_cache, true, "Reuse things.");
ABSL_FLAG(bool, test_no_auth, false, "No keys.");
ABSL_FLAG(int, test_forgotten, 7, "In no group.");

namespace phi3::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ProgramInfo Info() {
  return {"phi3-test", "tests the command line", "phi3-test [options]",
          {{"Model", {"test_model=FILE", "test_threads=N"}},
           {"Network", {"test_listen=HOST:PORT", "test_cache", "test_no_auth"}}},
          "  phi3-test --test-model m.gguf\n", "Exit status 0.\n", /*environment=*/true};
}

TEST(Help, GroupsFlagsWithDefaultsAndEnvironment) {
  const std::string help = Help(Info());
  EXPECT_THAT(help, HasSubstr("phi3-test: tests the command line\n\nUsage: phi3-test [options]"));
  EXPECT_THAT(help, HasSubstr("Model:\n  --test-model FILE\n      Model file. [$PHI3_TEST_MODEL]"));
  EXPECT_THAT(help, HasSubstr("Default: 127.0.0.1:1."));
  EXPECT_THAT(help, HasSubstr("--test-threads N\n      Threads; 0 = all. [$PHI3_TEST_THREADS]"));
  EXPECT_THAT(help, HasSubstr("On by default; --no-test-cache turns it off."));
  EXPECT_THAT(help, Not(HasSubstr("Default: false")));
  EXPECT_LT(help.find("Model:"), help.find("Network:"));
  EXPECT_THAT(help, HasSubstr("Examples:\n  phi3-test --test-model m.gguf\n"));
  EXPECT_THAT(help, HasSubstr("--version"));
  EXPECT_THAT(help, HasSubstr("Other:\n  --test-forgotten\n      In no group. Default: 7."));
}

TEST(EnvironmentName, IsPrefixedCapitals) {
  EXPECT_EQ(EnvironmentName("kv_cache_mb"), "PHI3_KV_CACHE_MB");
}

TEST(ParseCommandLine, EnvironmentSetsFlagsTheCommandLineDoesNotGive) {
  setenv("PHI3_TEST_MODEL", "/env/model.gguf", 1);
  setenv("PHI3_TEST_THREADS", "3", 1);
  setenv("PHI3_TEST_NO_AUTH", "true", 1);
  setenv("PHI3_TEST_CACHE", "true", 1);
  const char* argv[] = {"phi3-test", "--test-threads=5", "--notest-cache", "extra"};
  std::vector<char*> rest =
      ParseCommandLine(4, const_cast<char**>(argv), Info());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_model), "/env/model.gguf");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_threads), 5);  // the command line wins
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_no_auth));
  EXPECT_FALSE(absl::GetFlag(FLAGS_test_cache));
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_STREQ(rest[1], "extra");
}

TEST(Version, NamesProjectVersionAndRevision) {
  EXPECT_EQ(VersionLine("p"), std::string("p ") + ProjectVersion() + " (git " + GitRevision() + ")");
  EXPECT_STRNE(GitRevision(), "");
}

}  // namespace
}  // namespace phi3::cli
