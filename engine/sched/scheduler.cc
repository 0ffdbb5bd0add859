#include "engine/sched/scheduler.h"

#include <algorithm>
#include <cassert>

namespace phi3 {
namespace {

// `n` new tokens, capped by the sequence's chunk limit.
int ChunkOf(const Sequence& s, int n) {
  return s.max_chunk_tokens > 0 ? std::min(n, s.max_chunk_tokens) : n;
}

}  // namespace

Scheduler::Scheduler(const SchedulerOptions& options, KvCacheManager* kv)
    : options_(options), kv_(kv) {}

void Scheduler::AddWaiting(Sequence* seq) {
  assert(seq->state == Sequence::State::kWaiting && seq->num_computed_tokens == 0);
  queues_[seq->tenant].push_back(seq);
}

int Scheduler::num_waiting() const {
  size_t n = resume_.size();
  for (const auto& [tenant, queue] : queues_) n += queue.size();
  return static_cast<int>(n);
}

void Scheduler::Remove(Sequence* seq) {
  if (seq->state == Sequence::State::kRunning) {
    running_.erase(std::find(running_.begin(), running_.end(), seq));
  } else if (seq->state == Sequence::State::kWaiting) {
    auto it = std::find(resume_.begin(), resume_.end(), seq);
    if (it != resume_.end()) {
      resume_.erase(it);
    } else {
      auto q = queues_.find(seq->tenant);
      if (q != queues_.end()) {
        auto& queue = q->second;
        auto pos = std::find(queue.begin(), queue.end(), seq);
        if (pos != queue.end()) queue.erase(pos);
        if (queue.empty()) queues_.erase(q);
      }
    }
  }
  kv_->Free(&seq->kv);
  seq->state = Sequence::State::kFinished;
}

std::vector<Sequence*> Scheduler::WaitingOrder(size_t limit) const {
  std::vector<Sequence*> order;
  for (Sequence* s : resume_) {
    if (order.size() >= limit) return order;
    order.push_back(s);
  }
  // Tenants in name order, starting after the last one served.
  std::vector<const std::deque<Sequence*>*> tenants;
  auto start = has_last_tenant_ ? queues_.upper_bound(last_tenant_) : queues_.begin();
  for (auto it = start; it != queues_.end(); ++it) tenants.push_back(&it->second);
  for (auto it = queues_.begin(); it != start; ++it) tenants.push_back(&it->second);
  for (size_t round = 0; order.size() < limit; ++round) {
    bool any = false;
    for (const auto* queue : tenants) {
      if (round >= queue->size()) continue;
      any = true;
      order.push_back((*queue)[round]);
      if (order.size() >= limit) break;
    }
    if (!any) break;
  }
  return order;
}

StepPlan Scheduler::Plan() {
  StepPlan plan;
  const int bs = kv_->block_size();
  int budget = options_.max_batched_tokens;
  int free_blocks = kv_->pool().num_free();
  const size_t n = running_.size();
  std::vector<uint8_t> preempted(n, 0);
  std::vector<int> entry_of(n, -1);  // index into plan.scheduled
  std::vector<int> blocks_of(n, 0);  // blocks planned for running_[i]

  for (int pass = 0; pass < 2; ++pass) {
    const bool decode_pass = pass == 0;
    for (size_t i = 0; i < n && budget > 0; ++i) {
      Sequence* s = running_[i];
      if (preempted[i] || entry_of[i] >= 0) continue;
      if ((s->num_remaining() == 1) != decode_pass) continue;
      const int num_new = ChunkOf(*s, std::min(s->num_remaining(), budget));
      const int need = kv_->BlocksNeeded(s->kv, s->num_computed_tokens + num_new);
      while (need > free_blocks && !preempted[i]) {
        size_t victim = n;
        while (victim-- > 0 && preempted[victim]) {
        }
        preempted[victim] = 1;
        free_blocks += kv_->NumExclusiveBlocks(running_[victim]->kv);
        if (entry_of[victim] >= 0) {  // give back what it was planned
          ScheduledSequence& e = plan.scheduled[entry_of[victim]];
          budget += e.num_new_tokens;
          free_blocks += blocks_of[victim];
          e.seq = nullptr;
          entry_of[victim] = -1;
        }
      }
      if (preempted[i]) continue;
      entry_of[i] = static_cast<int>(plan.scheduled.size());
      blocks_of[i] = need;
      plan.scheduled.push_back({s, num_new, false, {}});
      budget -= num_new;
      free_blocks -= need;
    }
  }
  std::erase_if(plan.scheduled, [](const ScheduledSequence& e) { return e.seq == nullptr; });
  int num_running_after = 0;
  for (size_t i = 0; i < n; ++i) {
    if (preempted[i]) {
      plan.preempted.push_back(running_[i]);
    } else {
      ++num_running_after;
    }
  }

  if (plan.preempted.empty()) {
    const int slots = options_.max_running_sequences - num_running_after;
    if (slots > 0 && budget > 0) {
      std::vector<int32_t> hits;
      for (Sequence* s : WaitingOrder(slots)) {
        if (budget <= 0) break;
        kv_->FindPrefix(&s->kv, s->tokens, &hits);
        const int cached = static_cast<int>(hits.size()) * bs;
        const int num_new = ChunkOf(*s, std::min(static_cast<int>(s->tokens.size()) - cached, budget));
        const int need = (cached + num_new + bs - 1) / bs - static_cast<int>(hits.size());
        const int cost = need + kv_->CostOfHits(hits);
        if (cost > free_blocks) break;
        plan.scheduled.push_back({s, num_new, true, hits});
        budget -= num_new;
        free_blocks -= cost;
      }
    }
  }
  plan.num_tokens = options_.max_batched_tokens - budget;
  return plan;
}

void Scheduler::Apply(const StepPlan& plan) {
  for (Sequence* s : plan.preempted) {
    running_.erase(std::find(running_.begin(), running_.end(), s));
    kv_->Free(&s->kv);
    s->num_computed_tokens = 0;
    s->state = Sequence::State::kWaiting;
    ++s->num_preemptions;
    ++num_preemptions_;
    auto pos = std::upper_bound(
        resume_.begin(), resume_.end(), s,
        [](const Sequence* a, const Sequence* b) { return a->arrival < b->arrival; });
    resume_.insert(pos, s);
  }
  // Reused blocks are referenced before any allocation so that allocations
  // cannot evict them.
  for (const ScheduledSequence& e : plan.scheduled) {
    if (!e.admit) continue;
    Sequence* s = e.seq;
    auto r = std::find(resume_.begin(), resume_.end(), s);
    if (r != resume_.end()) {
      resume_.erase(r);
    } else {
      auto q = queues_.find(s->tenant);
      assert(q != queues_.end() && q->second.front() == s);
      q->second.pop_front();
      if (q->second.empty()) queues_.erase(q);
      last_tenant_ = s->tenant;
      has_last_tenant_ = true;
    }
    kv_->TakeHits(&s->kv, e.hits);
    s->num_computed_tokens = static_cast<int>(e.hits.size()) * kv_->block_size();
    if (!s->ever_scheduled) {
      s->ever_scheduled = true;
      s->cached_prompt_tokens = s->num_computed_tokens;
      prefix_query_tokens_ += s->num_prompt_tokens;
      prefix_hit_tokens_ += s->num_computed_tokens;
    }
    s->state = Sequence::State::kRunning;
    s->admit_order = next_admit_order_++;
    running_.push_back(s);
  }
  for (const ScheduledSequence& e : plan.scheduled) {
    kv_->Grow(&e.seq->kv, e.seq->num_computed_tokens + e.num_new_tokens);
  }
}

void Scheduler::Complete(const StepPlan& plan) {
  for (const ScheduledSequence& e : plan.scheduled) {
    Sequence* s = e.seq;
    s->num_computed_tokens += e.num_new_tokens;
    kv_->Commit(&s->kv, s->tokens, s->num_computed_tokens);
  }
}

}  // namespace phi3
