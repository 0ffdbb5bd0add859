// The scheduler's view of one request: its tokens and how much of them has
// KV in the cache. Owned by the engine core; the scheduler holds pointers.
#ifndef PHI3_ENGINE_SCHED_SEQUENCE_H_
#define PHI3_ENGINE_SCHED_SEQUENCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "engine/kv/kv_cache_manager.h"

namespace phi3 {

struct Sequence {
  enum class State { kWaiting, kRunning, kFinished };

  uint64_t id = 0;
  std::string tenant;
  uint64_t arrival = 0;      // submission order: FCFS within a tenant, resume order
  uint64_t admit_order = 0;  // order of the latest admission: the newest is preempted first
  State state = State::kWaiting;

  // [prompt..., completion...]; only appended to.
  std::vector<int32_t> tokens;
  int num_prompt_tokens = 0;
  // tokens[0, num_computed_tokens) have KV in kv.block_table.
  int num_computed_tokens = 0;
  // The evaluation in progress, [eval_begin, eval_end): the tokens that were
  // uncomputed when the sequence was (re)admitted or last caught up; its
  // chunks are passed to the model as one evaluation (forward.h "Rounding").
  int eval_begin = 0;
  int eval_end = 0;
  SequenceKv kv;
  // > 0: at most this many new tokens per step (background prefills, see
  // EngineCore), so that requests arriving meanwhile wait for less.
  int max_chunk_tokens = 0;

  bool ever_scheduled = false;
  int cached_prompt_tokens = 0;  // prefix-cache hit at the first admission
  int num_preemptions = 0;

  int num_remaining() const { return static_cast<int>(tokens.size()) - num_computed_tokens; }
};

}  // namespace phi3

#endif  // PHI3_ENGINE_SCHED_SEQUENCE_H_
