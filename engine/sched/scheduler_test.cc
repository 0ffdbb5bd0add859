#include "engine/sched/scheduler.h"

#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace phi3 {
namespace {

class SchedulerTest : public ::testing::Test {
 protected:
  void Init(int num_blocks, int block_size, int max_running, int max_tokens,
            bool prefix_cache = true) {
    kv_ = std::make_unique<KvCacheManager>(num_blocks, block_size, prefix_cache);
    sched_ = std::make_unique<Scheduler>(SchedulerOptions{max_running, max_tokens}, kv_.get());
  }
  Sequence* Add(int num_prompt, std::string tenant = "", int32_t first = 0) {
    auto s = std::make_unique<Sequence>();
    s->id = seqs_.size();
    s->arrival = seqs_.size();
    s->tenant = tenant;
    s->tokens.resize(num_prompt);
    std::iota(s->tokens.begin(), s->tokens.end(),
              first + 1000 * static_cast<int32_t>(seqs_.size()));
    s->num_prompt_tokens = num_prompt;
    kv_->Init(&s->kv, "");
    sched_->AddWaiting(s.get());
    seqs_.push_back(std::move(s));
    return seqs_.back().get();
  }
  // Plans, applies, "runs" the step and appends a token to every sequence
  // whose known tokens are all computed.
  StepPlan Step() {
    StepPlan plan = sched_->Plan();
    sched_->Apply(plan);
    // Writes only ever go to blocks this sequence holds alone.
    const int bs = kv_->block_size();
    for (const auto& e : plan.scheduled) {
      const Sequence& s = *e.seq;
      for (int pos = s.num_computed_tokens; pos < s.num_computed_tokens + e.num_new_tokens; ++pos) {
        EXPECT_EQ(kv_->pool().refcount(s.kv.block_table[pos / bs]), 1)
            << "write into a shared block at position " << pos << " of sequence " << s.id;
      }
    }
    sched_->Complete(plan);
    for (const auto& e : plan.scheduled) {
      if (e.seq->num_remaining() == 0) e.seq->tokens.push_back(7);
    }
    EXPECT_TRUE(kv_->pool().CheckInvariants().ok());
    return plan;
  }
  static std::vector<int> NewTokens(const StepPlan& plan) {
    std::vector<int> n;
    for (const auto& e : plan.scheduled) n.push_back(e.num_new_tokens);
    return n;
  }
  static std::vector<uint64_t> Ids(const StepPlan& plan) {
    std::vector<uint64_t> ids;
    for (const auto& e : plan.scheduled) ids.push_back(e.seq->id);
    return ids;
  }

  std::unique_ptr<KvCacheManager> kv_;
  std::unique_ptr<Scheduler> sched_;
  std::vector<std::unique_ptr<Sequence>> seqs_;
};

TEST_F(SchedulerTest, DecodesFirstThenPrefillChunksThenAdmissions) {
  Init(64, 4, 8, 10);
  Sequence* a = Add(3);
  Step();  // a: whole prompt
  Sequence* b = Add(30);
  StepPlan p = Step();  // a decodes, b gets the other 9
  EXPECT_EQ(Ids(p), (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(NewTokens(p), (std::vector<int>{1, 9}));
  Sequence* c = Add(5);
  p = Step();  // a decode, b prefill chunk of 9, c nothing left
  EXPECT_EQ(Ids(p), (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(NewTokens(p), (std::vector<int>{1, 9}));
  EXPECT_EQ(c->state, Sequence::State::kWaiting);
  EXPECT_EQ(sched_->num_waiting(), 1);
  p = Step();  // b has 12 left: 9 more; the budget is used up
  EXPECT_EQ(NewTokens(p), (std::vector<int>{1, 9}));
  p = Step();  // a: 1, b: its last 3 (with logits), c admitted with all 5: 9 <= 10
  EXPECT_EQ(Ids(p), (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(NewTokens(p), (std::vector<int>{1, 3, 5}));
  EXPECT_EQ(b->num_remaining(), 1);
  EXPECT_EQ(c->state, Sequence::State::kRunning);
  EXPECT_EQ(a->num_remaining(), 1);
}

TEST_F(SchedulerTest, PlanChangesNothingUntilApplied) {
  Init(16, 4, 8, 64);
  Add(10);
  Add(6);
  const int free_before = kv_->pool().num_free();
  StepPlan p1 = sched_->Plan();
  StepPlan p2 = sched_->Plan();
  EXPECT_EQ(Ids(p1), Ids(p2));
  EXPECT_EQ(NewTokens(p1), NewTokens(p2));
  EXPECT_EQ(kv_->pool().num_free(), free_before);
  EXPECT_EQ(sched_->num_running(), 0);
  EXPECT_EQ(sched_->num_waiting(), 2);
  sched_->Apply(p1);
  EXPECT_EQ(sched_->num_running(), 2);
  EXPECT_EQ(kv_->pool().num_free(), free_before - 3 - 2);
}

TEST_F(SchedulerTest, RunningLimitAndNoOvertaking) {
  Init(8, 4, 2, 100);
  Add(4);
  Add(4);
  Add(4);
  StepPlan p = Step();
  EXPECT_EQ(Ids(p), (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(sched_->num_waiting(), 1);

  // Head of the queue does not fit the pool (20 tokens = 5 blocks, 4 free... ) so
  // the small one behind it must wait too.
  Init(8, 4, 8, 100);
  Add(20);
  Step();   // 5 blocks
  Add(16);  // 4 blocks: does not fit in the 3 left
  Add(2);   // would fit, but may not overtake
  p = Step();
  EXPECT_EQ(Ids(p), (std::vector<uint64_t>{3}));
}

TEST_F(SchedulerTest, PreemptsNewestAndResumesItFirst) {
  Init(6, 4, 8, 100);     // 24 slots
  Sequence* a = Add(8);   // 2 blocks
  Sequence* b = Add(12);  // 3 blocks
  Step();                 // both prefilled: 5 blocks used, 1 free; both have 1 token to decode
  EXPECT_EQ(kv_->pool().num_free(), 1);
  StepPlan p = Step();  // a needs a 3rd block (pos 8): takes the free one; b needs a 4th: none
  ASSERT_EQ(p.preempted.size(), 1u);
  EXPECT_EQ(p.preempted[0], b);  // b is newest, and preempting itself is allowed
  EXPECT_EQ(Ids(p), (std::vector<uint64_t>{0}));
  EXPECT_EQ(b->state, Sequence::State::kWaiting);
  EXPECT_EQ(b->num_computed_tokens, 0);
  EXPECT_TRUE(b->kv.block_table.empty());
  EXPECT_EQ(sched_->num_preemptions(), 1);
  EXPECT_EQ(b->tokens.size(), 13u);  // its sampled token is kept for recomputation
  // A new arrival must not overtake the preempted b.
  Add(2);
  while (a->state == Sequence::State::kRunning && a->tokens.size() < 12) Step();
  sched_->Remove(a);
  p = Step();
  ASSERT_FALSE(p.scheduled.empty());
  EXPECT_EQ(p.scheduled[0].seq, b);
  EXPECT_TRUE(p.scheduled[0].admit);
  // b's first full blocks were cached when it was preempted: reused now.
  EXPECT_EQ(p.scheduled[0].hits.size(), 3u);
  EXPECT_EQ(b->cached_prompt_tokens, 0);  // usage counts the first admission only
}

TEST_F(SchedulerTest, RandomizedStepsKeepLimitsAndInvariants) {
  Init(24, 4, 5, 12);
  std::mt19937 rng(99);
  int finished = 0;
  for (int step = 0; step < 3000; ++step) {
    if (rng() % 3 == 0 && sched_->num_waiting() < 10) {
      Sequence* s = Add(1 + rng() % 40, std::string(1, static_cast<char>('a' + rng() % 3)));
      // Half share a prefix (up to 3 blocks) to exercise the cache.
      if (rng() % 2) {
        for (size_t i = 0; i < s->tokens.size() && i < 12; ++i) s->tokens[i] = 5 + i;
      }
    }
    StepPlan p = Step();
    ASSERT_LE(p.num_tokens, 12);
    ASSERT_LE(sched_->num_running(), 5);
    std::set<Sequence*> seen;
    int total = 0;
    for (const auto& e : p.scheduled) {
      ASSERT_TRUE(seen.insert(e.seq).second) << "scheduled twice";
      ASSERT_GT(e.num_new_tokens, 0);
      total += e.num_new_tokens;
      ASSERT_GE(static_cast<int>(e.seq->kv.block_table.size()) * 4, e.seq->num_computed_tokens);
    }
    ASSERT_EQ(total, p.num_tokens);
    // Finish sequences that have generated 8 tokens.
    for (Sequence* s : std::vector<Sequence*>(sched_->running())) {
      if (static_cast<int>(s->tokens.size()) >= s->num_prompt_tokens + 8) {
        sched_->Remove(s);
        ++finished;
      }
    }
  }
  EXPECT_GT(finished, 100);
  EXPECT_GT(sched_->num_preemptions(), 0);
  EXPECT_GT(sched_->prefix_hit_tokens(), 0);
  for (auto& s : seqs_) {
    if (s->state != Sequence::State::kFinished) sched_->Remove(s.get());
  }
  EXPECT_EQ(kv_->pool().num_used(), 0);
}

TEST_F(SchedulerTest, TenantsAreServedRoundRobin) {
  Init(64, 4, 1, 100);
  Add(2, "a");
  Add(2, "a");
  Add(2, "a");
  Add(2, "b");
  Add(2, "c");
  std::vector<uint64_t> order;
  for (int i = 0; i < 5; ++i) {
    StepPlan p = Step();
    ASSERT_EQ(p.scheduled.size(), 1u);
    order.push_back(p.scheduled[0].seq->id);
    sched_->Remove(p.scheduled[0].seq);  // finishes after one step
  }
  EXPECT_EQ(order, (std::vector<uint64_t>{0, 3, 4, 1, 2}));
}

TEST_F(SchedulerTest, RemoveWhileWaitingOrRunningFreesBlocks) {
  Init(16, 4, 8, 100);
  Sequence* a = Add(9);
  Sequence* b = Add(5, "t");
  Step();
  Sequence* c = Add(3);
  sched_->Remove(c);  // waiting
  EXPECT_EQ(sched_->num_waiting(), 0);
  sched_->Remove(a);
  sched_->Remove(b);
  EXPECT_EQ(kv_->pool().num_used(), 0);
  EXPECT_EQ(sched_->num_running(), 0);
  EXPECT_TRUE(kv_->pool().CheckInvariants().ok());
}

TEST_F(SchedulerTest, PrefixHitsCountOnFirstAdmission) {
  Init(32, 4, 8, 100);
  Sequence* a = Add(10, "", 0);
  Step();
  Sequence* b = Add(10, "", 0);
  b->tokens = a->tokens;
  b->tokens.resize(10);
  StepPlan p = Step();
  EXPECT_EQ(b->cached_prompt_tokens, 8);
  EXPECT_EQ(sched_->prefix_query_tokens(), 20);
  EXPECT_EQ(sched_->prefix_hit_tokens(), 8);
  (void)p;
}

}  // namespace
}  // namespace phi3
