#include "engine/sched/engine_core.h"

#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "engine/sched/testing/fakes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

using ::phi3::testing::FakeClock;
using ::phi3::testing::FakeModel;
using ::phi3::testing::FakeText;
using ::phi3::testing::RecordingSink;
using ::testing::HasSubstr;

constexpr int kVocab = 50;
constexpr int32_t kEog = 49;

EngineCoreOptions SmallOptions() {
  EngineCoreOptions o;
  o.context_size = 128;
  o.vocab_size = kVocab;
  o.kv_block_size = 4;
  o.num_kv_blocks = 256;
  o.max_running_sequences = 8;
  o.max_batched_tokens = 64;
  o.max_waiting_requests = 100;
  return o;
}

// Never produces end-of-generation unless a test asks for it.
int32_t NoEog(std::span<const int32_t> h) {
  return static_cast<int32_t>(phi3::testing::HashNextToken(kVocab - 1)(h));
}

class EngineCoreTest : public ::testing::Test {
 protected:
  void Init(EngineCoreOptions options, testing::NextTokenFn next = NoEog) {
    options_ = options;
    next_ = next;
    ASSERT_TRUE(ValidateEngineCoreOptions(options).ok());
    model_ = std::make_unique<FakeModel>(kVocab, options.context_size, next);
    ASSERT_TRUE(
        model_->InitKvCache(options.num_kv_blocks, options.kv_block_size, KvCacheType::kF16).ok());
    core_ = std::make_unique<EngineCore>(options, model_.get(), &text_, &clock_);
  }
  void SetUp() override { Init(SmallOptions()); }

  GenerateRequest Request(std::vector<int32_t> prompt, int max_tokens) {
    GenerateRequest r;
    r.prompt_tokens = std::move(prompt);
    r.sampling.temperature = 0.0f;
    r.stop.max_tokens = max_tokens;
    return r;
  }
  std::shared_ptr<RecordingSink> Submit(GenerateRequest r, RequestId* id = nullptr,
                                        int cancel_after = -1) {
    auto sink = std::make_shared<RecordingSink>(cancel_after);
    auto result = core_->Submit(std::move(r), sink);
    EXPECT_TRUE(result.ok()) << result.status();
    if (id != nullptr && result.ok()) *id = *result;
    return sink;
  }
  // Steps until nothing is left, checking invariants after every step.
  void RunUntilIdle(int max_steps = 10000) {
    for (int i = 0; i < max_steps; ++i) {
      const bool did = core_->Step();
      ASSERT_TRUE(core_->CheckInvariants().ok()) << core_->CheckInvariants();
      if (!did && core_->num_active() == 0) return;
    }
    FAIL() << "not idle after " << max_steps << " steps";
  }
  // One-at-a-time greedy expectation straight from the fake model.
  std::vector<int32_t> Reference(const std::vector<int32_t>& prompt, int max_tokens) {
    std::vector<int32_t> h = prompt, out;
    while (static_cast<int>(out.size()) < max_tokens) {
      int32_t t = next_(h);
      out.push_back(t);
      h.push_back(t);
      if (t == kEog) break;
    }
    return out;
  }
  std::vector<int32_t> Prompt(int n, int32_t seed) {
    std::vector<int32_t> p(n);
    for (int i = 0; i < n; ++i) p[i] = (seed * 7 + i * 3) % (kVocab - 1);
    return p;
  }

  EngineCoreOptions options_;
  testing::NextTokenFn next_;
  FakeText text_{kEog};
  FakeClock clock_;
  std::unique_ptr<FakeModel> model_;
  std::unique_ptr<EngineCore> core_;
};

TEST_F(EngineCoreTest, SingleRequestGreedyLengthUsageTimings) {
  auto prompt = Prompt(10, 1);
  auto sink = Submit(Request(prompt, 6));
  clock_.Advance(absl::Milliseconds(5));
  ASSERT_TRUE(core_->Step());  // prefill + first token
  clock_.Advance(absl::Milliseconds(7));
  RunUntilIdle();
  EXPECT_EQ(sink->tokens(), Reference(prompt, 6));
  EXPECT_EQ(sink->text(), FakeText::Decode(sink->tokens()));
  ASSERT_EQ(sink->num_finish_calls(), 1);
  FinishEvent f = sink->finish();
  EXPECT_EQ(f.reason, FinishReason::kLength);
  EXPECT_TRUE(f.status.ok());
  EXPECT_EQ(f.usage.prompt_tokens, 10);
  EXPECT_EQ(f.usage.completion_tokens, 6);
  EXPECT_EQ(f.usage.cached_prompt_tokens, 0);
  EXPECT_EQ(f.timings.queue_wait, absl::Milliseconds(5));
  EXPECT_EQ(f.timings.time_to_first_token, absl::Milliseconds(5));
  EXPECT_EQ(f.timings.total, absl::Milliseconds(12));
  EXPECT_EQ(core_->kv().pool().num_used(), 0);
  EXPECT_EQ(core_->Stats().steps, 6);
  EXPECT_EQ(model_->num_calls(), 6);
}

TEST_F(EngineCoreTest, EndOfGenerationStopsUnlessIgnored) {
  // After 3 generated tokens the model wants end-of-generation.
  Init(SmallOptions(), [](std::span<const int32_t> h) {
    return static_cast<int32_t>(h.size() == 8 ? kEog : h.size() % 20);
  });
  auto sink = Submit(Request(Prompt(5, 2), 10));
  GenerateRequest ignore = Request(Prompt(5, 2), 10);
  ignore.stop.ignore_eos = true;
  auto sink2 = Submit(ignore);
  RunUntilIdle();
  EXPECT_EQ(sink->tokens(), (std::vector<int32_t>{5, 6, 7, kEog}));
  EXPECT_EQ(sink->finish().reason, FinishReason::kStop);
  EXPECT_EQ(sink->finish().usage.completion_tokens, 4);
  EXPECT_EQ(sink->events().back().text_delta, "");
  EXPECT_EQ(sink->text(), "fgh");
  EXPECT_EQ(sink2->tokens().size(), 10u);
  EXPECT_EQ(sink2->finish().reason, FinishReason::kLength);
}

TEST_F(EngineCoreTest, StopTokenIdAndStopStringAcrossTokens) {
  // Generates a b c d e f ... (token = history length - 5).
  Init(SmallOptions(),
       [](std::span<const int32_t> h) { return static_cast<int32_t>(h.size() - 5); });
  GenerateRequest by_id = Request(Prompt(5, 3), 20);
  by_id.stop.stop_token_ids = {3};
  auto s1 = Submit(by_id);
  GenerateRequest by_text = Request(Prompt(5, 3), 20);
  by_text.stop.stop_strings = {"xyz", "def"};
  auto s2 = Submit(by_text);
  GenerateRequest never = Request(Prompt(5, 3), 4);
  never.stop.stop_strings = {"de"};  // "d" is held at the end and released as tail
  auto s3 = Submit(never);
  RunUntilIdle();
  EXPECT_EQ(s1->tokens(), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(s1->finish().reason, FinishReason::kStopSequence);
  EXPECT_EQ(s1->text(), "abc");

  EXPECT_EQ(s2->finish().reason, FinishReason::kStopSequence);
  EXPECT_EQ(s2->tokens().size(), 6u);  // ... d e f
  EXPECT_EQ(s2->streamed_text(), "abc");
  EXPECT_EQ(s2->finish().text_tail, "");
  EXPECT_EQ(s2->text(), "abc");

  EXPECT_EQ(s3->finish().reason, FinishReason::kLength);
  EXPECT_EQ(s3->streamed_text(), "abc");
  EXPECT_EQ(s3->finish().text_tail, "d");
}

TEST_F(EngineCoreTest, CancelDuringPrefillAndDecodeFreesBlocks) {
  EngineCoreOptions o = SmallOptions();
  o.max_batched_tokens = 8;
  Init(o);
  RequestId prefill_id, decode_id;
  auto prefill = Submit(Request(Prompt(40, 4), 5), &prefill_id);
  ASSERT_TRUE(core_->Step());
  EXPECT_GT(core_->kv().pool().num_used(), 0);
  core_->Cancel(prefill_id);
  ASSERT_TRUE(core_->Step());
  EXPECT_EQ(prefill->finish().reason, FinishReason::kCancelled);
  EXPECT_EQ(prefill->finish().usage.prompt_tokens, 8);  // one chunk of 40 was processed
  EXPECT_EQ(prefill->finish().usage.completion_tokens, 0);
  EXPECT_EQ(core_->kv().pool().num_used(), 0);

  auto decode = Submit(Request(Prompt(3, 5), 50), &decode_id);
  for (int i = 0; i < 4; ++i) core_->Step();
  EXPECT_EQ(decode->tokens().size(), 4u);
  core_->Cancel(decode_id);
  core_->Cancel(decode_id);  // twice: still one OnFinish
  core_->Step();
  core_->Cancel(decode_id);  // after finish: ignored
  RunUntilIdle();
  EXPECT_EQ(decode->num_finish_calls(), 1);
  EXPECT_EQ(decode->finish().reason, FinishReason::kCancelled);
  EXPECT_EQ(decode->finish().usage.completion_tokens, 4);
  EXPECT_EQ(core_->kv().pool().num_used(), 0);
  EXPECT_FALSE(decode->token_after_finish());
}

// A step that fills no KV block keeps nothing once its requests end: when all
// of them are cancelled while it runs (an editor's next keystroke), the model
// stops it between layers. Nothing is sampled or billed, the blocks are
// freed, and later outputs are unchanged. A step that fills a block, or that
// carries a request not cancelled, runs to the end.
TEST_F(EngineCoreTest, CancelledStepThatKeepsNothingIsAbandoned) {
  const std::vector<int32_t> base = Prompt(10, 3);  // blocks [0,4) [4,8) full
  RunUntilIdle();
  Submit(Request(base, 1));
  RunUntilIdle();
  auto extend = [&](std::vector<int32_t> tail) {
    std::vector<int32_t> p = base;
    p.insert(p.end(), tail.begin(), tail.end());
    return p;
  };
  auto cancel_during_next_step = [&](RequestId id) {
    model_->set_during_forward([this, id] { core_->Cancel(id); });
    ASSERT_TRUE(core_->Step());
    model_->set_during_forward(nullptr);
  };

  // 11 tokens, 8 cached: computes [8, 11), no block filled -> abandoned.
  RequestId short_id;
  auto abandoned = Submit(Request(extend({5}), 4), &short_id);
  cancel_during_next_step(short_id);
  EXPECT_TRUE(model_->calls().back().abandoned);
  EXPECT_FALSE(abandoned->finished());
  ASSERT_TRUE(core_->Step());
  EXPECT_EQ(abandoned->finish().reason, FinishReason::kCancelled);
  EXPECT_TRUE(abandoned->tokens().empty());
  EXPECT_EQ(abandoned->finish().usage.prompt_tokens, 0);
  EXPECT_EQ(core_->kv().pool().num_used(), 0);
  ASSERT_TRUE(core_->CheckInvariants().ok()) << core_->CheckInvariants();

  // 13 tokens: computes [8, 13), fills [8, 12) -> runs; the cache keeps it.
  RequestId long_id;
  auto kept = Submit(Request(extend({5, 6, 7}), 4), &long_id);
  cancel_during_next_step(long_id);
  EXPECT_FALSE(model_->calls().back().abandoned);
  RunUntilIdle();
  EXPECT_EQ(kept->finish().reason, FinishReason::kCancelled);
  EXPECT_EQ(kept->finish().usage.prompt_tokens, 13);
  auto reuses = Submit(Request(extend({5, 6, 7}), 4));
  RunUntilIdle();
  EXPECT_EQ(reuses->finish().usage.cached_prompt_tokens, 12);
  EXPECT_EQ(reuses->tokens(), Reference(extend({5, 6, 7}), 4));

  // With a request that is not cancelled in the batch -> runs.
  RequestId cancelled_id;
  auto cancelled = Submit(Request(extend({9}), 4), &cancelled_id);
  auto other = Submit(Request(Prompt(3, 11), 4));
  cancel_during_next_step(cancelled_id);
  EXPECT_FALSE(model_->calls().back().abandoned);
  RunUntilIdle();
  EXPECT_EQ(cancelled->finish().reason, FinishReason::kCancelled);
  EXPECT_EQ(other->tokens(), Reference(Prompt(3, 11), 4));

  // The abandoned request's prompt, run in full: the output is unchanged.
  auto again = Submit(Request(extend({5}), 4));
  RunUntilIdle();
  EXPECT_EQ(again->tokens(), Reference(extend({5}), 4));
  EXPECT_EQ(core_->kv().pool().num_used(), 0);
}

TEST_F(EngineCoreTest, SinkReturningFalseCancels) {
  RequestId id;
  auto sink = Submit(Request(Prompt(4, 6), 20), &id, /*cancel_after=*/3);
  RunUntilIdle();
  EXPECT_EQ(sink->tokens().size(), 3u);
  EXPECT_EQ(sink->finish().reason, FinishReason::kCancelled);
  EXPECT_EQ(sink->finish().usage.completion_tokens, 3);
}

TEST_F(EngineCoreTest, DeadlineInQueueAndInDecode) {
  EngineCoreOptions o = SmallOptions();
  o.max_running_sequences = 1;
  Init(o);
  GenerateRequest a = Request(Prompt(4, 7), 100);
  a.deadline = clock_.Now() + absl::Milliseconds(30);
  GenerateRequest b = Request(Prompt(4, 8), 5);
  b.deadline = clock_.Now() + absl::Milliseconds(10);  // expires while waiting behind a
  auto sa = Submit(a);
  auto sb = Submit(b);
  for (int i = 0; i < 5; ++i) {
    core_->Step();
    clock_.Advance(absl::Milliseconds(4));
  }
  EXPECT_EQ(sb->finish().reason, FinishReason::kDeadline);
  EXPECT_EQ(sb->finish().usage.prompt_tokens, 0);  // expired in the queue: costs nothing
  EXPECT_EQ(sb->finish().usage.completion_tokens, 0);
  EXPECT_EQ(sb->finish().timings.queue_wait, absl::Milliseconds(12));  // never scheduled
  EXPECT_FALSE(sa->finished());
  RunUntilIdle();  // the clock does not move: a is still before its deadline
  EXPECT_FALSE(sa->finished() && sa->finish().reason == FinishReason::kDeadline);
}

TEST_F(EngineCoreTest, DeadlineStopsRunningRequestWithinOneStep) {
  GenerateRequest a = Request(Prompt(4, 7), 100);
  a.deadline = clock_.Now() + absl::Milliseconds(30);
  auto sa = Submit(a);
  for (int i = 0; i < 10 && !sa->finished(); ++i) {
    core_->Step();
    clock_.Advance(absl::Milliseconds(10));
  }
  ASSERT_TRUE(sa->finished());
  EXPECT_EQ(sa->finish().reason, FinishReason::kDeadline);
  EXPECT_EQ(sa->tokens().size(), 3u);  // steps at t = 0, 10, 20; finished at t = 30
  EXPECT_EQ(core_->kv().pool().num_used(), 0);
}

TEST_F(EngineCoreTest, ValidationAndQueueFull) {
  auto sink = std::make_shared<RecordingSink>();
  auto r = Request({}, 5);
  auto st = core_->Submit(r, sink).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("prompt is empty"));
  st = core_->Submit(Request(Prompt(100, 1), 29), sink).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("exceeds the context size of 128"));
  r = Request(Prompt(3, 1), 5);
  r.sampling.top_p = 0.0f;
  st = core_->Submit(r, sink).status();
  EXPECT_THAT(st.message(), HasSubstr("top_p"));
  r = Request({1, kVocab}, 5);
  EXPECT_THAT(core_->Submit(r, sink).status().message(), HasSubstr("prompt_tokens[1] = 50"));
  r = Request(Prompt(3, 1), 5);
  r.stop.stop_strings.assign(17, "x");
  EXPECT_THAT(core_->Submit(r, sink).status().message(), HasSubstr("at most 16"));

  EngineCoreOptions o = SmallOptions();
  o.max_waiting_requests = 2;
  Init(o);
  Submit(Request(Prompt(3, 1), 5));
  Submit(Request(Prompt(3, 2), 5));
  st = core_->Submit(Request(Prompt(3, 3), 5), sink).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(st.message(), HasSubstr("max_waiting_requests = 2"));
  EXPECT_EQ(core_->Stats().waiting_requests, 2);
  core_->Step();  // both admitted: the queue has room again
  EXPECT_EQ(core_->Stats().waiting_requests, 0);
  EXPECT_EQ(core_->Stats().running_requests, 2);
  EXPECT_TRUE(core_->Submit(Request(Prompt(3, 3), 5), sink).ok());
  EXPECT_FALSE(sink->finished());
}

TEST_F(EngineCoreTest, ShutdownFinishesEverythingAsUnavailable) {
  auto a = Submit(Request(Prompt(4, 1), 50));
  core_->Step();
  auto b = Submit(Request(Prompt(4, 2), 50));  // never ingested
  core_->Shutdown();
  EXPECT_EQ(a->finish().reason, FinishReason::kError);
  EXPECT_EQ(a->finish().status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(b->num_finish_calls(), 1);
  EXPECT_EQ(b->finish().status.code(), absl::StatusCode::kUnavailable);
  auto sink = std::make_shared<RecordingSink>();
  EXPECT_EQ(core_->Submit(Request(Prompt(3, 1), 5), sink).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(core_->kv().pool().num_used(), 0);
}

TEST_F(EngineCoreTest, ForwardErrorFinishesScheduledRequests) {
  auto a = Submit(Request(Prompt(4, 1), 5));
  model_->FailNextForward(absl::InternalError("boom"));
  core_->Step();
  EXPECT_EQ(a->finish().reason, FinishReason::kError);
  EXPECT_EQ(a->finish().status.message(), "boom");
  EXPECT_EQ(a->finish().usage.prompt_tokens, 0);  // its only step failed
  auto b = Submit(Request(Prompt(4, 1), 5));
  RunUntilIdle();
  EXPECT_EQ(b->finish().reason, FinishReason::kLength);
}

TEST_F(EngineCoreTest, PrefixCacheReusesFullBlocksAndCountsTokens) {
  auto prompt = Prompt(18, 9);  // 4 full blocks of 4 + 2
  auto a = Submit(Request(prompt, 3));
  RunUntilIdle();
  auto b = Submit(Request(prompt, 3));
  auto longer = prompt;
  longer.push_back(1);
  longer.push_back(2);  // 20 tokens: blocks 0-4 full; at most 4 reusable (not the last token)
  auto c = Submit(Request(longer, 3));
  RunUntilIdle();
  EXPECT_EQ(b->finish().usage.cached_prompt_tokens, 16);
  EXPECT_EQ(b->finish().usage.prompt_tokens, 18);
  EXPECT_EQ(c->finish().usage.cached_prompt_tokens, 16);
  EXPECT_EQ(c->finish().usage.prompt_tokens, 20);
  EXPECT_EQ(b->tokens(), a->tokens());
  EXPECT_EQ(c->tokens(), Reference(longer, 3));
  EngineStats s = core_->Stats();
  EXPECT_EQ(s.prefix_cache_query_tokens, 18 + 18 + 20);
  EXPECT_EQ(s.prefix_cache_hit_tokens, 32);
  EXPECT_EQ(s.kv_blocks_used, 0);
}

// Warm-up: a prefill_only request computes the prompt's KV through the
// ordinary (chunked) path, samples nothing, and leaves its full blocks for
// the next request with the same prefix; the output does not change.
TEST_F(EngineCoreTest, PrefillOnlyFillsThePrefixCacheWithoutSampling) {
  EngineCoreOptions o = SmallOptions();
  o.max_batched_tokens = 8;  // the 22-token prompt takes 3 chunks
  Init(o);
  const auto prompt = Prompt(22, 12);
  GenerateRequest warm = Request(prompt, 0);
  warm.prefill_only = true;
  auto w = Submit(warm);
  RunUntilIdle();
  EXPECT_TRUE(w->tokens().empty());
  ASSERT_EQ(w->num_finish_calls(), 1);
  EXPECT_EQ(w->finish().reason, FinishReason::kLength);
  EXPECT_EQ(w->finish().usage.prompt_tokens, 22);
  EXPECT_EQ(w->finish().usage.cached_prompt_tokens, 0);
  EXPECT_EQ(w->finish().usage.completion_tokens, 0);
  ASSERT_EQ(model_->num_calls(), 3);
  for (const auto& call : model_->calls()) EXPECT_FALSE(call.want_logits[0]);
  EXPECT_EQ(core_->kv().pool().num_used(), 0);

  auto longer = prompt;
  longer.insert(longer.end(), {3, 4, 5});
  auto g = Submit(Request(longer, 4));
  RunUntilIdle();
  EXPECT_EQ(g->finish().usage.cached_prompt_tokens, 20);  // 5 full blocks of 4
  EXPECT_EQ(g->tokens(), Reference(longer, 4));

  // Validation: max_tokens is not needed, the prompt alone must fit.
  GenerateRequest full = Request(Prompt(o.context_size, 1), 0);
  full.prefill_only = true;
  EXPECT_TRUE(core_->Submit(full, std::make_shared<RecordingSink>(-1)).ok());
  full.prompt_tokens.push_back(1);
  EXPECT_EQ(core_->Submit(full, std::make_shared<RecordingSink>(-1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  RunUntilIdle();
}

// A warm-up runs in chunks of at most 64 tokens even when the step budget
// allows more, so that a request arriving meanwhile waits for one small
// chunk; it still fills the cache as one evaluation. An ordinary prompt
// takes the whole budget.
TEST_F(EngineCoreTest, PrefillOnlyRunsInSmallChunks) {
  EngineCoreOptions o = SmallOptions();
  o.max_batched_tokens = 256;
  Init(o);
  const auto prompt = Prompt(100, 5);
  GenerateRequest warm = Request(prompt, 0);
  warm.prefill_only = true;
  auto w = Submit(warm);
  ASSERT_TRUE(core_->Step());
  auto g = Submit(Request(Prompt(90, 6), 2));  // arrives during the warm-up
  RunUntilIdle();
  EXPECT_EQ(w->finish().usage.prompt_tokens, 100);
  const auto calls = model_->calls();
  ASSERT_GE(calls.size(), 2u);
  EXPECT_EQ(calls[0].num_new_tokens, std::vector<int>({64}));
  EXPECT_EQ(calls[0].eval_end, std::vector<int>({100}));
  // The next step: the rest of the warm-up and all of g's prompt.
  EXPECT_EQ(calls[1].num_new_tokens, std::vector<int>({36, 90}));
  EXPECT_EQ(calls[1].eval_begin, std::vector<int>({0, 0}));
  EXPECT_EQ(g->tokens(), Reference(Prompt(90, 6), 2));

  auto after = prompt;
  after.push_back(7);
  auto c = Submit(Request(after, 2));
  RunUntilIdle();
  EXPECT_EQ(c->finish().usage.cached_prompt_tokens, 100);
  EXPECT_EQ(c->tokens(), Reference(after, 2));
}

TEST_F(EngineCoreTest, ChunkedPrefillNeverStallsDecodes) {
  EngineCoreOptions o = SmallOptions();
  o.max_batched_tokens = 8;
  Init(o);
  auto a = Submit(Request(Prompt(3, 1), 30));
  core_->Step();  // a: prefill of 3 + first token
  auto b = Submit(Request(Prompt(60, 2), 2));
  for (int i = 0; i < 9; ++i) core_->Step();
  auto calls = model_->calls();
  ASSERT_EQ(calls.size(), 10u);
  for (size_t i = 1; i < calls.size(); ++i) {
    // a decodes first, b gets the rest of the budget.
    ASSERT_EQ(calls[i].num_new_tokens.size(), 2u) << "step " << i;
    EXPECT_EQ(calls[i].num_new_tokens[0], 1);
    EXPECT_EQ(calls[i].num_new_tokens[1], i == 9 ? 4 : 7);
    EXPECT_EQ(calls[i].start_pos[1], 7 * static_cast<int>(i - 1));
    EXPECT_EQ(calls[i].want_logits[1], i == 9);  // 60 = 8 * 7 + 4 -> 9th chunk is the last
    // Every chunk of b's prompt names the whole prompt as its evaluation (the
    // model's rounding rule, forward.h); a's decode token is its own.
    EXPECT_EQ(calls[i].eval_begin[1], 0);
    EXPECT_EQ(calls[i].eval_end[1], 60);
    EXPECT_EQ(calls[i].eval_begin[0], calls[i].start_pos[0]);
    EXPECT_EQ(calls[i].eval_end[0], calls[i].start_pos[0] + 1);
  }
  RunUntilIdle();
  EXPECT_EQ(a->tokens(), Reference(Prompt(3, 1), 30));
  EXPECT_EQ(b->tokens(), Reference(Prompt(60, 2), 2));
}

// The core property: batching, chunking, caching and preemption never change
// what a request generates (greedy and seeded sampling).
TEST_F(EngineCoreTest, BatchedCachedPreemptedRunsMatchOneAtATime) {
  for (bool sample : {false, true}) {
    std::mt19937 rng(sample ? 7 : 3);
    std::vector<GenerateRequest> requests;
    const std::vector<int32_t> shared = Prompt(13, 11);
    for (int i = 0; i < 24; ++i) {
      std::vector<int32_t> p;
      if (i % 2 == 0) p = shared;  // common system-prompt-like prefix
      auto tail = Prompt(1 + rng() % 30, 100 + i);
      p.insert(p.end(), tail.begin(), tail.end());
      GenerateRequest r = Request(p, 1 + rng() % 24);
      if (sample) {
        r.sampling.temperature = 1.5f;
        r.sampling.top_k = 10;
        r.sampling.seed = i;
        r.sampling.repetition_penalty = 1.3f;
      }
      requests.push_back(r);
    }
    // Reference: one at a time, no prefix cache.
    EngineCoreOptions solo = SmallOptions();
    solo.prefix_cache = false;
    solo.max_running_sequences = 1;
    Init(solo);
    std::vector<std::vector<int32_t>> expected;
    for (const auto& r : requests) {
      auto s = Submit(r);
      RunUntilIdle();
      expected.push_back(s->tokens());
    }
    // Batched with a tight pool (forces preemption) and staggered arrivals.
    EngineCoreOptions busy = SmallOptions();
    busy.num_kv_blocks = 32;  // one context = 32 blocks of 4
    busy.max_batched_tokens = 16;
    busy.max_running_sequences = 6;
    Init(busy);
    std::vector<std::shared_ptr<RecordingSink>> sinks;
    for (size_t i = 0; i < requests.size(); ++i) {
      sinks.push_back(Submit(requests[i]));
      if (i % 3 == 2) {
        core_->Step();
        ASSERT_TRUE(core_->CheckInvariants().ok());
      }
    }
    RunUntilIdle();
    for (size_t i = 0; i < requests.size(); ++i) {
      EXPECT_EQ(sinks[i]->tokens(), expected[i]) << "request " << i << " sample " << sample;
      EXPECT_EQ(sinks[i]->num_finish_calls(), 1);
      // Billed once, although preempted requests recomputed their tokens.
      const Usage& usage = sinks[i]->finish().usage;
      EXPECT_EQ(usage.prompt_tokens, static_cast<int>(requests[i].prompt_tokens.size()));
      EXPECT_EQ(usage.completion_tokens, static_cast<int>(expected[i].size()));
    }
    EngineStats stats = core_->Stats();
    EXPECT_GT(stats.preemptions, 0);
    EXPECT_GT(stats.prefix_cache_hit_tokens, 0);
    EXPECT_GT(stats.kv_evictions, 0);
    EXPECT_EQ(stats.kv_blocks_used, 0);
    EXPECT_LT(stats.steps, model_->num_calls() + 1);
  }
}

TEST_F(EngineCoreTest, TenantsShareFairly) {
  EngineCoreOptions o = SmallOptions();
  o.max_running_sequences = 1;
  Init(o);
  std::vector<std::shared_ptr<RecordingSink>> greedy;
  for (int i = 0; i < 6; ++i) {
    GenerateRequest r = Request(Prompt(3, i), 2);
    r.tenant = "bulk";
    greedy.push_back(Submit(r));
  }
  GenerateRequest r = Request(Prompt(3, 9), 2);
  r.tenant = "small";
  auto small = Submit(r);
  // Run until `small` finishes and count how many bulk requests finished first.
  int steps = 0;
  while (!small->finished() && steps++ < 100) core_->Step();
  int bulk_done = 0;
  for (auto& s : greedy) bulk_done += s->finished();
  EXPECT_LE(bulk_done, 1);
  RunUntilIdle();
}

TEST_F(EngineCoreTest, CacheScopesDoNotShareBlocks) {
  Init(SmallOptions());
  auto prompt = Prompt(12, 3);
  GenerateRequest a = Request(prompt, 2);
  a.tenant = "alice";
  a.cache_scope = "t:alice";
  Submit(a);
  RunUntilIdle();
  GenerateRequest b = a;
  b.tenant = "bob";
  b.cache_scope = "t:bob";
  auto sb = Submit(b);
  RunUntilIdle();
  GenerateRequest c = b;  // another tenant in alice's scope (a share group)
  c.tenant = "carol";
  c.cache_scope = "t:alice";
  auto sc = Submit(c);
  RunUntilIdle();
  auto sa = Submit(a);
  RunUntilIdle();
  EXPECT_EQ(sb->finish().usage.cached_prompt_tokens, 0);
  EXPECT_EQ(sc->finish().usage.cached_prompt_tokens, 8);
  EXPECT_EQ(sa->finish().usage.cached_prompt_tokens, 8);
}

TEST_F(EngineCoreTest, LoopThreadServesConcurrentSubmits) {
  EngineCoreOptions o = SmallOptions();
  Init(o);
  EngineCore core(o, model_.get(), &text_, SystemClock());
  core.Start();
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (int i = 0; i < 20; ++i) {
    auto sink = std::make_shared<RecordingSink>();
    ASSERT_TRUE(core.Submit(Request(Prompt(5 + i, i), 8), sink).ok());
    sinks.push_back(sink);
  }
  for (int i = 0; i < 2000; ++i) {
    bool all = true;
    for (auto& s : sinks) all &= s->finished();
    if (all) break;
    absl::SleepFor(absl::Milliseconds(2));
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(sinks[i]->finished());
    EXPECT_EQ(sinks[i]->tokens(), Reference(Prompt(5 + i, i), 8));
  }
  EXPECT_EQ(core.Stats().kv_blocks_used, 0);
}

TEST_F(EngineCoreTest, CancelledInTheQueueCostsNothing) {
  EngineCoreOptions o = SmallOptions();
  o.max_running_sequences = 1;
  Init(o);
  RequestId waiting_id;
  auto running = Submit(Request(Prompt(6, 1), 20));
  auto waiting = Submit(Request(Prompt(30, 2), 5), &waiting_id);
  for (int i = 0; i < 3; ++i) core_->Step();
  ASSERT_FALSE(waiting->finished());
  core_->Cancel(waiting_id);
  core_->Step();
  ASSERT_EQ(waiting->finish().reason, FinishReason::kCancelled);
  EXPECT_EQ(waiting->finish().usage.prompt_tokens, 0);
  EXPECT_EQ(waiting->finish().usage.cached_prompt_tokens, 0);
  EXPECT_EQ(waiting->finish().usage.completion_tokens, 0);
  RunUntilIdle();
  EXPECT_EQ(running->finish().usage.prompt_tokens, 6);
  EXPECT_EQ(running->finish().usage.completion_tokens, 20);
}

TEST_F(EngineCoreTest, CancelBeforeTheLoopSawTheRequest) {
  RequestId id;
  auto sink = Submit(Request(Prompt(4, 1), 5), &id);
  core_->Cancel(id);
  RunUntilIdle();
  EXPECT_EQ(sink->finish().reason, FinishReason::kCancelled);
  EXPECT_TRUE(sink->tokens().empty());
  EXPECT_EQ(model_->num_calls(), 0);
}

// A sink that submits a follow-up and cancels another request from inside
// OnToken: sinks run without engine locks, so this must not deadlock.
class ReentrantSink : public RecordingSink {
 public:
  ReentrantSink(EngineCore* core, RequestId victim, std::shared_ptr<RecordingSink> follow_up)
      : core_(core), victim_(victim), follow_up_(std::move(follow_up)) {}
  bool OnToken(const TokenEvent& event) override {
    if (!done_) {
      done_ = true;
      core_->Cancel(victim_);
      GenerateRequest r;
      r.prompt_tokens = {1, 2, 3};
      r.stop.max_tokens = 2;
      follow_up_ok_ = core_->Submit(r, follow_up_).ok();
      stats_ = core_->Stats();
    }
    return RecordingSink::OnToken(event);
  }
  bool follow_up_ok_ = false;

 private:
  EngineCore* core_;
  RequestId victim_;
  std::shared_ptr<RecordingSink> follow_up_;
  bool done_ = false;
  EngineStats stats_;
};

TEST_F(EngineCoreTest, SinksMayCallBackIntoTheEngine) {
  RequestId victim;
  auto victim_sink = Submit(Request(Prompt(4, 2), 50), &victim);
  auto follow_up = std::make_shared<RecordingSink>();
  auto sink = std::make_shared<ReentrantSink>(core_.get(), victim, follow_up);
  ASSERT_TRUE(core_->Submit(Request(Prompt(4, 3), 3), sink).ok());
  RunUntilIdle();
  EXPECT_TRUE(sink->follow_up_ok_);
  EXPECT_EQ(sink->finish().reason, FinishReason::kLength);
  EXPECT_EQ(victim_sink->finish().reason, FinishReason::kCancelled);
  EXPECT_EQ(follow_up->finish().reason, FinishReason::kLength);
  EXPECT_EQ(follow_up->tokens().size(), 2u);
}

TEST_F(EngineCoreTest, LogprobsReported) {
  GenerateRequest r = Request(Prompt(4, 1), 2);
  r.sampling.logprobs = true;
  r.sampling.num_top_logprobs = 3;
  auto s = Submit(r);
  RunUntilIdle();
  auto events = s->events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_LT(events[0].logprob, 0.0f);
  ASSERT_EQ(events[0].top_logprobs.size(), 3u);
  EXPECT_EQ(events[0].top_logprobs[0].token_id, events[0].token_id);
  EXPECT_FLOAT_EQ(events[0].top_logprobs[0].logprob, events[0].logprob);
}

}  // namespace
}  // namespace phi3
