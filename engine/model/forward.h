// What the scheduler asks of a model: one forward step over a batch of
// sequences whose KV lives in paged blocks. Implemented by the Phi-3 model
// (engine/model) and by fakes in scheduler tests.
#ifndef PHI3_ENGINE_MODEL_FORWARD_H_
#define PHI3_ENGINE_MODEL_FORWARD_H_

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "engine/common/kv_cache_type.h"

namespace phi3 {

// llama.cpp's n_ubatch as the oracle runs it (node-llama-cpp: batch size 512,
// n_ubatch = n_batch); must be a multiple of 4.
inline constexpr int kLlamaUbatchTokens = 512;

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
  // The llama.cpp evaluation these tokens belong to (see "Rounding"): this
  // sequence's positions [eval_begin, eval_end) evaluated by one llama_decode
  // call, of which this slice may be a chunk. eval_end == 0 (default): the
  // slice alone. REQUIRES when set: eval_begin <= start_pos and
  // start_pos + tokens.size() <= eval_end.
  int32_t eval_begin = 0;
  int32_t eval_end = 0;
};

struct ForwardBatch {
  std::vector<SequenceSlice> sequences;
  // Optional. Polled between layers (cheap, thread-safe); once it returns
  // true the step stops early and Forward returns CANCELLED. The K/V written
  // until then are in slots the caller must treat as never written: it drops
  // every sequence of the batch without recording the step as computed.
  std::function<bool()> abandoned;
};

// Rounding. llama.cpp's CPU kernels round a token's products differently in
// a multi-token evaluation (prompt processing) than in a single-token one
// (decode), and Q4_K also by the token's place in the batch. A model that
// mirrors llama.cpp assigns each new token the rounding it would get if its
// evaluation (SequenceSlice::eval_begin/eval_end, default the slice itself)
// were a llama_decode call of its own, split into ubatches of
// kLlamaUbatchTokens:
//   - a ubatch of 1 token (decode; or the last token of a prompt of
//     k * kLlamaUbatchTokens + 1): decode rounding;
//   - otherwise prompt rounding, and Q4_K's 4-token gemm order for all but
//     the last n % 4 tokens of the n-token evaluation (the ubatch size is a
//     multiple of 4), whatever the chunking into slices;
//   - the last layer after attention, and the output head, only for the
//     logit rows, with decode rounding (llama.cpp computes them on its output
//     rows only; one per sequence).
// So a token's numbers depend only on its sequence's tokens and on its
// evaluation range, never on the other sequences of the batch; a prompt run
// alone (or chunked by the scheduler with the range passed on) and then
// decoded token by token reproduces llama.cpp's numbers for one sequence.
//
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
