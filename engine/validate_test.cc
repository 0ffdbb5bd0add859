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
      {"empty prompt", [](auto& r) { r.prompt_tokens.clear(); }, "prompt is empty (0 tokens)"},
      {"token id", [](auto& r) { r.prompt_tokens[2] = 50; },
       "prompt_tokens[2] = 50 is outside the vocabulary [0, 50)"},
      {"negative id", [](auto& r) { r.prompt_tokens[0] = -1; }, "prompt_tokens[0] = -1"},
      {"max_tokens", [](auto& r) { r.stop.max_tokens = 0; },
       "stop.max_tokens must be in [1, context size], got 0"},
      {"context", [](auto& r) { r.stop.max_tokens = 98; },
       "prompt (3 tokens) + max_tokens (98) = 101 exceeds the context size of 100 tokens"},
      {"temperature", [](auto& r) { r.sampling.temperature = -0.5f; },
       "sampling.temperature must be in [0, 2], got -0.5"},
      {"temperature nan", [](auto& r) { r.sampling.temperature = NAN; }, "sampling.temperature"},
      {"temperature inf", [](auto& r) { r.sampling.temperature = INFINITY; },
       "sampling.temperature"},
      {"top_k", [](auto& r) { r.sampling.top_k = -1; }, "sampling.top_k must be in [0, inf)"},
      {"top_p zero", [](auto& r) { r.sampling.top_p = 0.0f; },
       "sampling.top_p must be in (0, 1], got 0"},
      {"top_p big", [](auto& r) { r.sampling.top_p = 1.5f; }, "got 1.5"},
      {"min_p", [](auto& r) { r.sampling.min_p = 1.0f; }, "sampling.min_p must be in [0, 1), got 1"},
      {"repetition zero", [](auto& r) { r.sampling.repetition_penalty = 0.0f; },
       "sampling.repetition_penalty must be in (0, 10], got 0"},
      {"presence", [](auto& r) { r.sampling.presence_penalty = 2.5f; },
       "sampling.presence_penalty must be in [-2, 2], got 2.5"},
      {"presence nan", [](auto& r) { r.sampling.presence_penalty = NAN; },
       "sampling.presence_penalty"},
      {"frequency", [](auto& r) { r.sampling.frequency_penalty = -3.0f; },
       "sampling.frequency_penalty must be in [-2, 2], got -3"},
      {"top logprobs", [](auto& r) { r.sampling.num_top_logprobs = 21; },
       "sampling.num_top_logprobs must be in [0, 20], got 21"},
      {"stop count", [](auto& r) { r.stop.stop_strings.assign(17, "x"); },
       "too many stop strings: 17 given, at most 16"},
      {"empty stop", [](auto& r) { r.stop.stop_strings = {"a", ""}; },
       "stop.stop_strings[1] is empty"},
      {"long stop", [](auto& r) { r.stop.stop_strings = {std::string(257, 'x')}; },
       "stop.stop_strings[0] is 257 bytes, at most 256"},
      {"stop ids count", [](auto& r) { r.stop.stop_token_ids.assign(65, 1); },
       "too many stop token ids: 65 given, at most 64"},
      {"stop id", [](auto& r) { r.stop.stop_token_ids = {7, 99}; },
       "stop.stop_token_ids[1] = 99 is outside the vocabulary [0, 50)"},
  };
  for (const Case& c : cases) {
    GenerateRequest r = Valid();
    c.mutate(r);
    absl::Status s = ValidateRequest(r, 100, 50);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.name;
  }
}

// The table's edges: the last value inside each range is accepted, the first
// outside is not. These ranges are the API's contract (README, proto).
TEST(ValidateRequestTest, RangeEdges) {
  struct Edge {
    const char* name;
    std::function<void(SamplingParams&, bool inside)> set;
  };
  const std::vector<Edge> edges = {
      {"temperature max", [](auto& s, bool in) { s.temperature = in ? 2.0f : 2.001f; }},
      {"temperature min", [](auto& s, bool in) { s.temperature = in ? 0.0f : -0.001f; }},
      {"top_p", [](auto& s, bool in) { s.top_p = in ? 1.0f : 1.001f; }},
      {"min_p", [](auto& s, bool in) { s.min_p = in ? 0.999f : 1.0f; }},
      {"repetition max", [](auto& s, bool in) { s.repetition_penalty = in ? 10.0f : 10.01f; }},
      {"repetition min", [](auto& s, bool in) { s.repetition_penalty = in ? 0.001f : 0.0f; }},
      {"presence", [](auto& s, bool in) { s.presence_penalty = in ? -2.0f : -2.001f; }},
      {"frequency", [](auto& s, bool in) { s.frequency_penalty = in ? 2.0f : 2.001f; }},
      {"top logprobs", [](auto& s, bool in) { s.num_top_logprobs = in ? 20 : 21; }},
  };
  for (const Edge& e : edges) {
    SamplingParams inside, outside;
    e.set(inside, true);
    e.set(outside, false);
    EXPECT_TRUE(ValidateSamplingParams(inside).ok()) << e.name;
    EXPECT_EQ(ValidateSamplingParams(outside).code(), absl::StatusCode::kInvalidArgument)
        << e.name;
  }
  StopParams stop;
  stop.stop_strings.assign(kMaxStopStrings, std::string(kMaxStopStringBytes, 'x'));
  stop.stop_token_ids.assign(kMaxStopTokenIds, 0);
  EXPECT_TRUE(ValidateStopParams(stop, 1).ok());
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
