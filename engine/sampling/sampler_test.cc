#include "engine/sampling/sampler.h"

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace phi3 {
namespace {

SamplingParams Greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

TEST(SamplerTest, GreedyPicksArgmaxLowestIdOnTies) {
  Sampler s(Greedy(), 5);
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
  EXPECT_EQ(s.Sample(logits, nullptr), 1);
  logits[4] = 3.0f;
  EXPECT_EQ(s.Sample(logits, nullptr), 4);
}

TEST(SamplerTest, RepetitionPenaltyLlamaCppSemantics) {
  SamplingParams p = Greedy();
  p.repetition_penalty = 2.0f;
  Sampler s(p, 3);
  // Token 0 (positive logit) is divided: 3.0 / 2 = 1.5 < 2.0.
  s.Accept(0);
  std::vector<float> logits = {3.0f, 2.0f, -5.0f};
  EXPECT_EQ(s.Sample(logits, nullptr), 1);
  // Negative logits are multiplied: token 1 at -1 becomes -2 < -1.5.
  Sampler t(p, 3);
  t.Accept(1);
  std::vector<float> neg = {-1.5f, -1.0f, -5.0f};
  EXPECT_EQ(t.Sample(neg, nullptr), 0);
}

TEST(SamplerTest, FrequencyAndPresencePenalties) {
  SamplingParams p = Greedy();
  p.frequency_penalty = 0.5f;
  Sampler s(p, 3);
  s.Accept(0);
  s.Accept(0);
  // 2.0 - 2 * 0.5 = 1.0 < 1.5.
  std::vector<float> logits = {2.0f, 1.5f, 0.0f};
  EXPECT_EQ(s.Sample(logits, nullptr), 1);

  SamplingParams q = Greedy();
  q.presence_penalty = 0.4f;
  Sampler t(q, 3);
  t.Accept(0);
  t.Accept(0);
  // 2.0 - 0.4 = 1.6 > 1.5: presence does not scale with the count.
  EXPECT_EQ(t.Sample(logits, nullptr), 0);
}

TEST(SamplerTest, PenaltyWindowForgetsOldTokens) {
  SamplingParams p = Greedy();
  p.presence_penalty = 1.0f;
  Sampler s(p, 3);
  s.Accept(0);
  std::vector<float> logits = {2.0f, 1.5f, 0.0f};
  EXPECT_EQ(s.Sample(logits, nullptr), 1);
  for (int i = 0; i < kPenaltyLastN; ++i) s.Accept(2);
  EXPECT_EQ(s.Sample(logits, nullptr), 0);  // token 0 left the window
}

// Draws many tokens and returns the set that ever appears.
std::set<int32_t> Support(const SamplingParams& p, const std::vector<float>& logits) {
  Sampler s(p, static_cast<int>(logits.size()));
  std::set<int32_t> seen;
  for (int i = 0; i < 2000; ++i) seen.insert(s.Sample(logits, nullptr));
  return seen;
}

TEST(SamplerTest, TopKRestrictsToKBest) {
  SamplingParams p;
  p.temperature = 5.0f;  // flatten so that everything allowed shows up
  p.top_k = 2;
  EXPECT_EQ(Support(p, {1.0f, 3.0f, 2.0f, 0.0f}), (std::set<int32_t>{1, 2}));
}

TEST(SamplerTest, TopPKeepsSmallestNucleus) {
  // softmax of {ln 0.5, ln 0.3, ln 0.15, ln 0.05} = {0.5, 0.3, 0.15, 0.05}.
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.75f;  // 0.5 < 0.75 <= 0.8
  EXPECT_EQ(Support(p, logits), (std::set<int32_t>{0, 1}));
  p.top_p = 0.85f;  // 0.8 < 0.85 <= 0.95
  EXPECT_EQ(Support(p, logits), (std::set<int32_t>{0, 1, 2}));
}

TEST(SamplerTest, TopPOnLargeVocabUsesLazySort) {
  // 5000 tokens: one with most of the mass, the rest tiny and equal.
  std::vector<float> logits(5000, 0.0f);
  logits[4321] = 20.0f;
  SamplingParams p;
  p.top_p = 0.9f;
  EXPECT_EQ(Support(p, logits), (std::set<int32_t>{4321}));
}

TEST(SamplerTest, MinPDropsUnlikelyTokens) {
  // p relative to max: 1, 0.5, 0.1.
  std::vector<float> logits = {0.0f, std::log(0.5f), std::log(0.1f)};
  SamplingParams p;
  p.min_p = 0.3f;
  EXPECT_EQ(Support(p, logits), (std::set<int32_t>{0, 1}));
}

TEST(SamplerTest, TemperatureSharpensDistribution) {
  std::vector<float> logits = {1.0f, 0.0f};
  auto count0 = [&](float temp) {
    SamplingParams p;
    p.temperature = temp;
    p.seed = 7;
    Sampler s(p, 2);
    int n = 0;
    for (int i = 0; i < 4000; ++i) n += s.Sample(logits, nullptr) == 0;
    return n / 4000.0;
  };
  // Expected P(0) = sigmoid(1 / T).
  EXPECT_NEAR(count0(1.0f), 1.0 / (1.0 + std::exp(-1.0)), 0.03);
  EXPECT_NEAR(count0(0.25f), 1.0 / (1.0 + std::exp(-4.0)), 0.02);
  EXPECT_NEAR(count0(4.0f), 1.0 / (1.0 + std::exp(-0.25)), 0.03);
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedDiffers) {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = std::sin(i * 0.7f);
  auto run = [&](uint64_t seed) {
    SamplingParams p;
    p.seed = seed;
    p.top_k = 50;
    p.top_p = 0.95f;
    Sampler s(p, 100);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.Sample(logits, nullptr));
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(SamplerTest, LogprobsAreRawLogSoftmax) {
  SamplingParams p = Greedy();
  p.logprobs = true;
  p.num_top_logprobs = 2;
  p.repetition_penalty = 3.0f;  // must not affect reported logprobs
  Sampler s(p, 3);
  s.Accept(0);
  std::vector<float> logits = {2.0f, 1.0f, 1.0f};
  TokenEvent ev;
  int32_t tok = s.Sample(logits, &ev);
  EXPECT_EQ(tok, 1);  // 2/3 < 1; tie 1 vs 2 -> lowest id
  const double lse = std::log(std::exp(2.0) + 2 * std::exp(1.0));
  EXPECT_NEAR(ev.logprob, 1.0 - lse, 1e-5);
  ASSERT_EQ(ev.top_logprobs.size(), 2u);
  EXPECT_EQ(ev.top_logprobs[0].token_id, 0);
  EXPECT_NEAR(ev.top_logprobs[0].logprob, 2.0 - lse, 1e-5);
  EXPECT_EQ(ev.top_logprobs[1].token_id, 1);
}

TEST(SamplerTest, NoLogprobsUnlessAsked) {
  Sampler s(Greedy(), 3);
  TokenEvent ev;
  std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  EXPECT_EQ(s.Sample(logits, &ev), 2);
  EXPECT_EQ(ev.logprob, 0.0f);
  EXPECT_TRUE(ev.top_logprobs.empty());
}

}  // namespace
}  // namespace phi3
