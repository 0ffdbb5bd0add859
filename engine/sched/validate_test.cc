#include <functional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

using ::testing::HasSubstr;

GenerateRequest Valid() {
  GenerateRequest r;
  r.prompt_tokens = {1, 2, 3};
  r.stop.max_tokens = 10;
  return r;
}

struct Case {
  const char* name;
  std::function<void(GenerateRequest&)> mutate;
  const char* message;  // substring of the InvalidArgument message
};

TEST(ValidateRequestTest, DefaultsAreValid) {
  EXPECT_TRUE(ValidateRequest(Valid(), 100, 50).ok());
  GenerateRequest r = Valid();
  r.stop.max_tokens = 97;  // 3 + 97 = 100: exactly the context
  EXPECT_TRUE(ValidateRequest(r, 100, 50).ok());
}

TEST(ValidateRequestTest, EachFieldNamesItselfAndItsRange) {
  const std::vector<Case> cases = {
      {"empty prompt", [](auto& r) { r.prompt_tokens.clear(); }, "prompt_tokens is empty"},
      {"token id", [](auto& r) { r.prompt_tokens[2] = 50; }, "prompt_tokens[2] = 50"},
      {"negative id", [](auto& r) { r.prompt_tokens[0] = -1; }, "expected [0, 50)"},
      {"max_tokens", [](auto& r) { r.stop.max_tokens = 0; }, "max_tokens = 0"},
      {"context", [](auto& r) { r.stop.max_tokens = 98; },
       "prompt_tokens (3) + max_tokens (98) = 101 exceeds the context size of 100"},
      {"temperature", [](auto& r) { r.sampling.temperature = -0.5f; }, "temperature = -0.5"},
      {"temperature nan", [](auto& r) { r.sampling.temperature = NAN; }, "temperature"},
      {"top_k", [](auto& r) { r.sampling.top_k = -1; }, "top_k = -1"},
      {"top_p zero", [](auto& r) { r.sampling.top_p = 0.0f; },
       "top_p = 0 is out of range: expected (0, 1]"},
      {"top_p big", [](auto& r) { r.sampling.top_p = 1.5f; }, "top_p = 1.5"},
      {"min_p", [](auto& r) { r.sampling.min_p = 1.0f; },
       "min_p = 1 is out of range: expected [0, 1)"},
      {"repetition", [](auto& r) { r.sampling.repetition_penalty = 0.0f; },
       "repetition_penalty = 0"},
      {"presence", [](auto& r) { r.sampling.presence_penalty = 2.5f; }, "presence_penalty = 2.5"},
      {"frequency", [](auto& r) { r.sampling.frequency_penalty = -3.0f; },
       "frequency_penalty = -3"},
      {"top logprobs", [](auto& r) { r.sampling.num_top_logprobs = 21; }, "num_top_logprobs = 21"},
      {"stop count", [](auto& r) { r.stop.stop_strings.assign(17, "x"); }, "stop_strings has 17"},
      {"empty stop",
       [](auto& r) {
         r.stop.stop_strings = {"a", ""};
       },
       "stop_strings[1] has 0 bytes"},
      {"long stop", [](auto& r) { r.stop.stop_strings = {std::string(257, 'x')}; },
       "has 257 bytes"},
      {"stop ids count", [](auto& r) { r.stop.stop_token_ids.assign(65, 1); },
       "stop_token_ids has 65"},
      {"stop id",
       [](auto& r) {
         r.stop.stop_token_ids = {7, 99};
       },
       "stop_token_ids[1] = 99"},
  };
  for (const Case& c : cases) {
    GenerateRequest r = Valid();
    c.mutate(r);
    absl::Status s = ValidateRequest(r, 100, 50);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.name;
  }
}

TEST(FinishReasonNameTest, Names) {
  EXPECT_STREQ(FinishReasonName(FinishReason::kStop), "STOP");
  EXPECT_STREQ(FinishReasonName(FinishReason::kLength), "LENGTH");
  EXPECT_STREQ(FinishReasonName(FinishReason::kStopSequence), "STOP_SEQUENCE");
  EXPECT_STREQ(FinishReasonName(FinishReason::kCancelled), "CANCELLED");
  EXPECT_STREQ(FinishReasonName(FinishReason::kDeadline), "DEADLINE");
  EXPECT_STREQ(FinishReasonName(FinishReason::kError), "ERROR");
}

}  // namespace
}  // namespace phi3
