// Iteration-level continuous batching (vLLM v1 style): a step is "how many
// new tokens for each sequence", so prefill and decode share one path.
//
// Plan() decides a step without changing scheduling state:
//   1. running sequences that decode (1 token) in admission order,
//   2. running sequences still in prefill, one chunk each (at most
//      Sequence::max_chunk_tokens when set, also at admission),
//   3. waiting sequences, while the running limit, the token budget and the
//      free blocks allow: preempted ones first (oldest first), then new ones
//      round-robin across tenants (FCFS within a tenant) so that one tenant
//      cannot starve the others. Admission stops at the first that does not
//      fit (no overtaking within that order), and nothing is admitted in a
//      step that preempts.
// When a running sequence needs blocks that are not free, the newest running
// sequence is preempted (possibly itself): its blocks are released (full
// blocks stay in the prefix cache) and it is recomputed later from its
// tokens, prompt and completion, so its stream only pauses.
// Apply() performs the plan; Complete() records that the forward pass wrote
// the planned tokens' KV.
//
// Thread safety: none; owned by the engine loop thread.
#ifndef PHI3_ENGINE_SCHED_SCHEDULER_H_
#define PHI3_ENGINE_SCHED_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "engine/kv/kv_cache_manager.h"
#include "engine/sched/sequence.h"

namespace phi3 {

// The scheduler's share of SchedulingOptions (scheduling_options.h, which
// holds the defaults).
struct SchedulerOptions {
  int max_running_sequences = 0;  // >= 1
  int max_batched_tokens = 0;     // >= 1
};

struct ScheduledSequence {
  Sequence* seq = nullptr;
  int num_new_tokens = 0;     // tokens [num_computed, num_computed + n) this step
  bool admit = false;         // joins the running set this step
  std::vector<int32_t> hits;  // admit only: cached prefix blocks to reuse
};

struct StepPlan {
  std::vector<Sequence*> preempted;
  std::vector<ScheduledSequence> scheduled;  // forward batch order
  int num_tokens = 0;
  bool empty() const { return scheduled.empty() && preempted.empty(); }
};

class Scheduler {
 public:
  // `kv` must outlive the scheduler.
  Scheduler(const SchedulerOptions& options, KvCacheManager* kv);

  // Queues a new sequence behind its tenant's others.
  // REQUIRES: seq->state == kWaiting, seq->num_computed_tokens == 0.
  void AddWaiting(Sequence* seq);
  // Drops a sequence wherever it is and frees its blocks (finish/cancel).
  void Remove(Sequence* seq);

  StepPlan Plan();
  void Apply(const StepPlan& plan);
  // After the forward pass of an applied plan: advances num_computed_tokens
  // and registers newly full blocks in the prefix cache.
  void Complete(const StepPlan& plan);

  int num_running() const { return static_cast<int>(running_.size()); }
  int num_waiting() const;
  const std::vector<Sequence*>& running() const { return running_; }
  int64_t num_preemptions() const { return num_preemptions_; }
  int64_t prefix_query_tokens() const { return prefix_query_tokens_; }
  int64_t prefix_hit_tokens() const { return prefix_hit_tokens_; }

 private:
  // Waiting sequences in admission order (see the file comment).
  std::vector<Sequence*> WaitingOrder(size_t limit) const;

  SchedulerOptions options_;
  KvCacheManager* kv_;
  std::vector<Sequence*> running_;                       // by admit_order
  std::vector<Sequence*> resume_;                        // preempted, by arrival
  std::map<std::string, std::deque<Sequence*>> queues_;  // tenant -> FCFS queue
  std::string last_tenant_;                              // round-robin cursor
  bool has_last_tenant_ = false;
  uint64_t next_admit_order_ = 0;
  int64_t num_preemptions_ = 0;
  int64_t prefix_query_tokens_ = 0;
  int64_t prefix_hit_tokens_ = 0;
};

}  // namespace phi3

#endif  // PHI3_ENGINE_SCHED_SCHEDULER_H_
