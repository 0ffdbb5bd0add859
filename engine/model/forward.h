// What the scheduler asks of a model: one forward step over a batch of
// sequences whose KV lives in paged blocks. Implemented by the Phi-3 model
// (engine/model) and by fakes in scheduler tests.
#ifndef PHI3_ENGINE_MODEL_FORWARD_H_
#define PHI3_ENGINE_MODEL_FORWARD_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "engine/engine.h"  // KvCacheType

namespace phi3 {

// One sequence's share of a forward step.
struct SequenceSlice {
  // New tokens, at positions [start_pos, start_pos + tokens.size()).
  std::span<const int32_t> tokens;
  // Tokens of this sequence already in the KV cache (positions [0, start_pos)).
  int32_t start_pos = 0;
  // KV block ids; block_table[p / block_size] holds position p. Covers at least
  // [0, start_pos + tokens.size()).
  std::span<const int32_t> block_table;
  // Produce logits for the last new token.
  bool want_logits = false;
};

struct ForwardBatch {
  std::vector<SequenceSlice> sequences;
};

// Thread safety: Forward calls are serialised by the caller (the engine loop).
class ForwardModel {
 public:
  virtual ~ForwardModel() = default;

  virtual int vocab_size() const = 0;
  virtual int context_length() const = 0;
  // Bytes of KV (all layers, K and V) one token takes with this cache type.
  virtual int64_t KvBytesPerToken(KvCacheType type) const = 0;

  // (Re)creates the paged KV storage: num_blocks blocks of block_size tokens.
  // Discards all cached contents.
  virtual absl::Status InitKvCache(int num_blocks, int block_size, KvCacheType type) = 0;

  // Runs the batch: writes K/V of every new token into its block slot, and
  // fills `logits` with one row of vocab_size() floats per sequence with
  // want_logits, in batch order.
  // REQUIRES: InitKvCache succeeded; no two sequences write the same slot;
  // logits.size() >= rows * vocab_size().
  virtual absl::Status Forward(const ForwardBatch& batch, std::span<float> logits) = 0;
};

}  // namespace phi3

#endif  // PHI3_ENGINE_MODEL_FORWARD_H_
