// The serving knobs a user sets, with their defaults: the one definition.
// EngineOptions (engine/engine.h) and EngineCoreOptions (engine_core.h) derive
// from it, and phi3-server's flags take their defaults from it.
#ifndef PHI3_ENGINE_SCHED_SCHEDULING_OPTIONS_H_
#define PHI3_ENGINE_SCHED_SCHEDULING_OPTIONS_H_

#include "absl/status/status.h"

namespace phi3 {

struct SchedulingOptions {
  int kv_block_size = 16;          // tokens per KV block, [1, 1024]
  int max_running_sequences = 16;  // sequences in one forward step, >= 1
  int max_batched_tokens = 512;    // tokens (decode + prefill chunks) per step, >= 1
  int max_waiting_requests = 256;  // queued requests beyond which Submit returns
                                   // ResourceExhausted, >= 0
  bool prefix_cache = true;        // reuse the KV cache of identical prompt prefixes
                                   // (partitioned by GenerateRequest::cache_scope)
};

// Checks the ranges above: InvalidArgument naming the field, the expected
// range and the value given.
absl::Status ValidateSchedulingOptions(const SchedulingOptions& options);

}  // namespace phi3

#endif  // PHI3_ENGINE_SCHED_SCHEDULING_OPTIONS_H_
