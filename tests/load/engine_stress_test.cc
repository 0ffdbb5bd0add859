// Hundreds of concurrent requests from several threads against the real
// engine loop thread (fake model), with random cancellation, sinks that
// stop, deadlines, a pool small enough to force preemption and eviction,
// and a shared prefix. Afterwards: every sink finished exactly once, no
// token after a finish, zero blocks in use, zero running or waiting
// requests, and every request that ran to completion produced exactly the
// tokens of a one-at-a-time run.
#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/sched/engine_core.h"
#include "engine/sched/testing/fakes.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

using ::phi3::testing::FakeModel;
using ::phi3::testing::FakeText;
using ::phi3::testing::RecordingSink;

constexpr int kVocab = 64;
constexpr int32_t kEog = 63;

struct Submitted {
  GenerateRequest request;
  std::shared_ptr<RecordingSink> sink;
  RequestId id = 0;
  bool accepted = false;
};

std::vector<int32_t> Reference(const FakeModel& model, const GenerateRequest& r) {
  std::vector<int32_t> history = r.prompt_tokens, out;
  std::vector<float> logits(kVocab);
  while (static_cast<int>(out.size()) < r.stop.max_tokens) {
    model.Logits(history, logits);
    int32_t best = 0;
    for (int v = 1; v < kVocab; ++v) {
      if (logits[v] > logits[best]) best = v;
    }
    out.push_back(best);
    history.push_back(best);
    if (best == kEog) break;
  }
  return out;
}

void RunStress(bool prefix_cache, uint32_t seed) {
  EngineCoreOptions o;
  o.context_size = 256;
  o.vocab_size = kVocab;
  o.kv_block_size = 8;
  o.num_kv_blocks = 40;  // < 2 contexts: heavy preemption and eviction
  o.max_running_sequences = 12;
  o.max_batched_tokens = 64;
  o.max_waiting_requests = 1000;
  o.prefix_cache = prefix_cache;
  ASSERT_TRUE(ValidateEngineCoreOptions(o).ok());
  FakeModel model(kVocab, o.context_size);
  ASSERT_TRUE(model.InitKvCache(o.num_kv_blocks, o.kv_block_size, KvCacheType::kF16).ok());
  model.set_forward_delay(absl::Microseconds(100));  // let cancels land mid-request
  FakeText text(kEog);
  EngineCore core(o, &model, &text, SystemClock());
  core.Start();

  constexpr int kThreads = 4, kPerThread = 100;
  std::vector<std::vector<Submitted>> all(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(seed + t);
      std::vector<int32_t> shared(24);
      for (int i = 0; i < 24; ++i) shared[i] = (i * 5) % (kVocab - 1);
      for (int i = 0; i < kPerThread; ++i) {
        Submitted s;
        if (rng() % 2) s.request.prompt_tokens = shared;
        const int extra = 1 + rng() % 60;
        for (int k = 0; k < extra; ++k) s.request.prompt_tokens.push_back(rng() % (kVocab - 1));
        s.request.sampling.temperature = 0.0f;
        s.request.stop.max_tokens = 1 + rng() % 40;
        s.request.tenant = "tenant" + std::to_string(rng() % 3);
        const int kind = rng() % 10;
        if (kind == 0) s.request.deadline = absl::Now() + absl::Milliseconds(rng() % 20);
        s.sink = std::make_shared<RecordingSink>(kind == 1 ? 1 + rng() % 5 : -1);
        auto id = core.Submit(s.request, s.sink);
        s.accepted = id.ok();
        if (id.ok()) s.id = *id;
        if (kind == 2 || kind == 3) {
          if (rng() % 2) absl::SleepFor(absl::Microseconds(rng() % 2000));
          core.Cancel(s.id);
        }
        all[t].push_back(std::move(s));
        if (rng() % 8 == 0) absl::SleepFor(absl::Microseconds(rng() % 500));
      }
    });
  }
  for (auto& th : threads) th.join();

  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  for (auto& per_thread : all) {
    for (auto& s : per_thread) {
      if (!s.accepted) continue;
      while (!s.sink->finished() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
    }
  }
  int completed = 0, cancelled = 0, deadline = 0;
  for (auto& per_thread : all) {
    for (auto& s : per_thread) {
      ASSERT_TRUE(s.accepted);
      ASSERT_EQ(s.sink->num_finish_calls(), 1) << "request " << s.id << " stuck or finished twice";
      ASSERT_FALSE(s.sink->token_after_finish());
      const FinishEvent f = s.sink->finish();
      EXPECT_EQ(f.usage.completion_tokens, static_cast<int>(s.sink->tokens().size()));
      // Billed: the prompt tokens processed (computed or reused), so all of
      // them once a token was sampled, fewer or none when cancelled earlier.
      const int prompt_size = static_cast<int>(s.request.prompt_tokens.size());
      EXPECT_LE(f.usage.cached_prompt_tokens, f.usage.prompt_tokens);
      if (!s.sink->tokens().empty()) EXPECT_EQ(f.usage.prompt_tokens, prompt_size);
      const std::vector<int32_t> expected = Reference(model, s.request);
      if (f.reason == FinishReason::kLength || f.reason == FinishReason::kStop) {
        ++completed;
        EXPECT_EQ(f.usage.prompt_tokens, prompt_size);
        EXPECT_EQ(s.sink->tokens(), expected) << "request " << s.id;
      } else {
        EXPECT_LE(f.usage.prompt_tokens, prompt_size);
        // Cancelled or expired: what was produced is a prefix of the answer.
        cancelled += f.reason == FinishReason::kCancelled;
        deadline += f.reason == FinishReason::kDeadline;
        std::vector<int32_t> got = s.sink->tokens();
        ASSERT_LE(got.size(), expected.size());
        EXPECT_TRUE(std::equal(got.begin(), got.end(), expected.begin())) << "request " << s.id;
      }
    }
  }
  // Stats are published at the end of each step; wait for the last one.
  EngineStats stats;
  for (int i = 0; i < 1000; ++i) {
    stats = core.Stats();
    if (stats.running_requests == 0 && stats.waiting_requests == 0 && stats.kv_blocks_used == 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(stats.running_requests, 0);
  EXPECT_EQ(stats.waiting_requests, 0);
  EXPECT_EQ(stats.kv_blocks_used, 0);
  EXPECT_GT(completed, 100);
  EXPECT_GT(cancelled, 20);
  EXPECT_GT(stats.preemptions, 0);
  if (prefix_cache) {
    EXPECT_GT(stats.prefix_cache_hit_tokens, 0);
    EXPECT_GT(stats.kv_evictions, 0);
  }
  core.Shutdown();
  ::testing::Test::RecordProperty("completed", completed);
  ::testing::Test::RecordProperty("cancelled", cancelled);
  ::testing::Test::RecordProperty("deadline", deadline);
  ::testing::Test::RecordProperty("preemptions", static_cast<int>(stats.preemptions));
  ::testing::Test::RecordProperty("steps", static_cast<int>(stats.steps));
}

TEST(EngineStressTest, ConcurrentCancelPreemptNoLeaksPrefixCache) { RunStress(true, 1); }
TEST(EngineStressTest, ConcurrentCancelPreemptNoLeaksNoCache) { RunStress(false, 100); }

}  // namespace
}  // namespace phi3
