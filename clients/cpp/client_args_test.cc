#include "clients/cpp/client_args.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3::client {
namespace {

absl::StatusOr<ClientArgs> Parse(std::vector<std::string> words) {
  std::vector<char*> argv = {const_cast<char*>("phi3-client")};
  for (std::string& w : words) argv.push_back(w.data());
  return ParseClientArgs(static_cast<int>(argv.size()), argv.data());
}

TEST(ClientArgs, FlagsBeforeAndAfterTheCommand) {
  auto args = Parse({"--addr", "h:1", "--api-key=k", "generate", "--prompt", "hi there",
                     "--stop", "a", "--stop=b", "--json", "--max-tokens", "5"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, "generate");
  EXPECT_EQ(args->Get("addr"), "h:1");
  EXPECT_EQ(args->Get("api-key"), "k");
  EXPECT_EQ(args->Get("prompt"), "hi there");
  EXPECT_THAT(args->GetAll("stop"), ::testing::ElementsAre("a", "b"));
  EXPECT_TRUE(args->Has("json"));
  EXPECT_FALSE(args->Has("stats"));
  EXPECT_EQ(args->Get("max-tokens"), "5");
  EXPECT_EQ(args->Get("seed", "7"), "7");
}

TEST(ClientArgs, ChatMessagesKeepTheirOrder) {
  auto args = Parse({"chat", "--system", "s", "--user", "u1", "--assistant", "a1", "--user", "u2"});
  ASSERT_TRUE(args.ok());
  ASSERT_EQ(args->ordered.size(), 4u);
  EXPECT_EQ(args->ordered[2].first, "assistant");
  EXPECT_EQ(args->ordered[3].second, "u2");
}

TEST(ClientArgs, Errors) {
  EXPECT_FALSE(Parse({"generate", "--bogus", "1"}).ok());
  EXPECT_FALSE(Parse({"generate", "--prompt"}).ok());
  EXPECT_FALSE(Parse({"generate", "extra"}).ok());
  EXPECT_FALSE(Parse({"--json=maybe"}).ok());
}

}  // namespace
}  // namespace phi3::client
