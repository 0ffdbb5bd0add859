// The Phi-3 forward pass, computed as llama.cpp computes the `phi3`
// architecture (src/models/phi3.cpp, non-flash attention, f16 KV cache).
//
// Types:
//   Phi3Hparams + Phi3Weights  read-only model (views over the GGUF mapping)
//   Phi3ForwardState           mutable per-step state: paged KV pools, scratch
//   Phi3Model                  both, plus a ThreadPool; implements ForwardModel
//
// Per layer: x += Wo . Attn(RoPE(Q), RoPE(K), V) of RmsNorm(x) * attn_norm
// (fused or separate Q/K/V projections); x += Wdown . SwiGLU(Wup .
// (RmsNorm(x) * ffn_norm)), gate = the first n_ff rows of ffn_up; logits =
// Woutput . (RmsNorm(x) * output_norm). RoPE is NEOX over rope_dims with
// freq_base and, for LongRoPE files, rope_factors_long when the (256-padded)
// run context exceeds original_context_length, else rope_factors_short; the
// rope attn_factor scales cos and sin. Q is scaled by 1/sqrt(head_dim).
// Attention is causal over each sequence's own cache; never windowed
// (llama.cpp disables phi3's sliding window).
//
// Determinism: every token's logits depend only on its sequence's tokens,
// never on the thread count or on which other sequences share the batch.
//
// Thread safety: Forward/InitKvCache must be serialised by the caller (the
// engine loop); const accessors may be called concurrently.
#ifndef PHI3_ENGINE_MODEL_PHI3_MODEL_H_
#define PHI3_ENGINE_MODEL_PHI3_MODEL_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/common/cache_line_allocator.h"
#include "engine/common/kv_cache_type.h"
#include "engine/common/progress.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/packed_weights.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/forward.h"
#include "engine/model/phi3_hparams.h"
#include "engine/model/phi3_weights.h"

namespace phi3 {

// The context served when none is asked for, capped by the model's trained
// context (phi3-mini-4k's; the 128k models would need GBs of KV per sequence).
inline constexpr int kDefaultContextSize = 4096;

struct ModelOptions {
  int num_threads = 0;   // compute threads; 0 = std::thread::hardware_concurrency()
  // Positions per sequence (llama.cpp's n_ctx); 0 = min(kDefaultContextSize,
  // context_length).
  // Decides the LongRoPE factor set. Must be <= the trained context_length.
  int context_size = 0;
  // Repack every Q4_0/Q4_1/Q8_0/Q4_K/Q5_K/Q6_K matrix MatMul reads (not token_embd,
  // which is read by row) into the 16-row interleaved layout at load (same
  // numbers, ~2x faster decode), and copy F16/BF16 ones onto huge pages
  // (packed_weights.h). Also off when PHI3_PACK_WEIGHTS=0 is set.
  bool pack_weights = true;
  // Reports phase "packing weights" (bytes of the matrices packed).
  ProgressCallback progress = nullptr;
};

// Mutable state of forward steps. All buffers are resized on demand.
struct Phi3ForwardState {
  // ---- paged KV (InitKvCache)
  KvCacheType kv_type = KvCacheType::kF16;
  int num_blocks = 0;
  int block_size = 0;
  int64_t kv_token_bytes = 0;  // KvTokenBytes(kv_type, kv_dim)
  // Per layer: [num_blocks][block_size][kv_dim] f16 (or kv_dim/32 BlockQ8_0),
  // cache-line aligned.
  std::vector<std::vector<uint8_t, CacheLineAllocator<uint8_t>>> k_pool, v_pool;

  // ---- scratch for one step of T tokens (R of them with logits)
  std::vector<int32_t> token_seq;   // [T] index of the token's sequence
  std::vector<int32_t> token_pos;   // [T] absolute position
  std::vector<float> rope;          // [T][rope_dims] cos/sin table per token
  std::vector<float> x;             // [T][n_embd] residual stream
  std::vector<float> xn;            // [T][n_embd] normed input of a matmul
  std::vector<float> qkv;           // [T][q_dim + 2 kv_dim] (Q | K | V)
  std::vector<float> attn;          // [T][q_dim] attention output
  std::vector<float> proj;          // [T][n_embd] attn_output / ffn_down result
  std::vector<float> up;            // [T][2 n_ff] gate | up
  std::vector<float> act;           // [T][n_ff] SwiGLU output
  std::vector<float> head_in;       // [R][n_embd] normed final rows with logits
};

class Phi3Model : public ForwardModel {
 public:
  // Validates hparams and weights. `file` must outlive the model.
  // Errors: see ReadPhi3Hparams / LoadPhi3Weights; InvalidArgument for bad
  // options (context_size above the trained context, negative threads).
  static absl::StatusOr<std::unique_ptr<Phi3Model>> Load(const GgufFile& file,
                                                         const ModelOptions& options);
  // Opens `path` (GgufFile::Open errors) and loads; the model owns the file.
  // Memory: the file mapping pages of the matrices that were packed are
  // released (madvise MADV_DONTNEED, page-aligned inside each tensor), so
  // resident memory holds each packed matrix once; the kernel re-reads them
  // from the page cache if anything still reads those rows. Load() (file
  // not owned) packs too but leaves the caller's mapping alone.
  static absl::StatusOr<std::unique_ptr<Phi3Model>> Open(const std::string& path,
                                                         const ModelOptions& options);
  ~Phi3Model() override;

  // ForwardModel. context_length() is the per-sequence context of this run
  // (ModelOptions::context_size resolved), not the trained context.
  int vocab_size() const override { return hparams_.vocab_size; }
  int context_length() const override { return context_size_; }
  int64_t KvBytesPerToken(KvCacheType type) const override;
  // InvalidArgument for num_blocks/block_size < 1, q8_0 with head_dim not a
  // multiple of 32; ResourceExhausted if the pools cannot be allocated.
  absl::Status InitKvCache(int num_blocks, int block_size, KvCacheType type) override;
  // InvalidArgument (naming the sequence) for an empty slice, a token id out
  // of [0, vocab_size), positions past context_length(), a block table that
  // is too short or names blocks outside the pool; FailedPrecondition before
  // InitKvCache.
  absl::Status Forward(const ForwardBatch& batch, std::span<float> logits) override;

  const Phi3Hparams& hparams() const { return hparams_; }
  const Phi3Weights& weights() const { return weights_; }
  const GgufFile& file() const { return *file_; }
  int num_threads() const { return pool_->num_threads(); }
  // True when this run uses rope_factors_long.
  bool uses_long_rope_factors() const { return use_long_factors_; }

 private:
  Phi3Model() = default;
  void PackMatrices(const ProgressCallback& progress);
  void ReleasePackedFilePages();

  std::unique_ptr<GgufFile> owned_file_;  // set by Open
  const GgufFile* file_ = nullptr;
  Phi3Hparams hparams_;
  Phi3Weights weights_;
  int context_size_ = 0;
  bool use_long_factors_ = false;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<PackedWeights> packed_;  // referenced by weights_' WeightView::packed
  Phi3ForwardState state_;
};

}  // namespace phi3

#endif  // PHI3_ENGINE_MODEL_PHI3_MODEL_H_
