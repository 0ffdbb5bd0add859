// Causal attention over a sequence's paged KV cache.
//
// RunAttentionLayer is what the forward pass calls: one layer's RoPE, K/V
// store and attention for every new row of a batch, tiled (a tile of up to
// 32 queries of one sequence and one head against tiles of 256 KV
// positions, so each K/V block is read once per query tile) and run in
// parallel over (head, query tile). AttendHead is the untiled one-query
// routine kept as a simple reference.
//
// KV pool layout (per layer, K and V alike):
//   kF16:  [num_blocks][block_size][kv_dim] f16
//   kQ8_0: [num_blocks][block_size][kv_dim / 32] BlockQ8_0
// Token t of a sequence lives in block block_table[t / block_size], slot
// t % block_size; head h's values are elements [h * head_dim, (h+1) * head_dim).
//
// RunAttentionLayer's numerics are llama.cpp's non-flash CPU path with an f16
// cache (ggml_mul_mat(K, Q), soft_max_ext, ggml_mul_mat(V^T, KQ)), which
// rounds differently by evaluation size (ne11 = tokens of the llama_decode):
//   prompt rounding (ne11 >= 2: llamafile tinyBLAS, f16 x f16):
//     score = tree16(lane l: fma chain over elements i = l (mod 16), i
//             ascending);  out[d] = tree16(lane l: fma chain of p[t] v[t][d]
//             over positions t = l (mod 16), t ascending);
//   decode rounding (ne11 = 1: ggml_vec_dot_f16, AVX-512 build):
//     score = (float)((double)tree16((a0 + a2) + (a1 + a3)) + sum in double
//             of the products of elements [head_dim & ~63, head_dim)), a_j =
//             fma chains over 16-element chunks c = j (mod 4) of the first
//             head_dim & ~63 elements;  out[d] = tree16((a0 + a2) + (a1 + a3))
//             with a_j lane l = fma chain over positions t, t % 64 = 16 j + l.
//   tree16(x) = ((x_i + x_i+8) + (x_i+4 + x_i+12)) ... (_mm512_reduce_add_ps).
//   Both: q pre-scaled and rounded to f16 values; softmax as
//   ggml_vec_soft_max_f32 (ExpRow terms, per-16 float sums added in double,
//   times (float)(1 / sum)); probabilities rounded to f16. Positions a query
//   does not see contribute exactly nothing, so llama.cpp's padding of n_kv
//   to 256 changes nothing. The decode score's double tail is summed
//   vectorised; it equals llama.cpp's sequential sum whenever that sum is
//   exact in double (products of f16 values have 22 significant bits).
// A q8_0 cache (llama.cpp needs flash attention for it) uses the same orders
// on dequantized values. head_dim % 16 != 0 falls back to AttendHead.
//
// Thread safety: pure functions; callers run heads in parallel on distinct
// outputs.
#ifndef PHI3_ENGINE_MODEL_ATTENTION_H_
#define PHI3_ENGINE_MODEL_ATTENTION_H_

#include <cstdint>
#include <span>

#include "engine/common/kv_cache_type.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/forward.h"

namespace phi3 {

// The vector primitives attention needs: AVX2+FMA+F16C when the kernels'
// ActiveSimdLevel() allows it, else scalar.
struct AttentionKernels {
  const char* name;
  // sum_i f16(k[i]) * q[i]
  float (*dot_f16)(const uint16_t* k, const float* q, int n);
  // y[i] += a * f16(v[i])
  void (*axpy_f16)(float a, const uint16_t* v, float* y, int n);
};
const AttentionKernels& GetAttentionKernels();
const AttentionKernels& GetScalarAttentionKernels();

struct KvLayerView {
  KvCacheType type = KvCacheType::kF16;
  const uint8_t* k = nullptr;  // pool base of this layer (layout above)
  const uint8_t* v = nullptr;
  int block_size = 0;
  int64_t token_bytes = 0;     // bytes of one token's kv_dim values
};

// Bytes one token's kv_dim values take in a pool of `type`.
// REQUIRES: kQ8_0 needs kv_dim % 32 == 0.
int64_t KvTokenBytes(KvCacheType type, int kv_dim);

// Writes one token's K and V rows (kv_dim f32 each) into slot `slot`
// (= block * block_size + offset) of the layer's pools.
void StoreKv(KvCacheType type, const float* k, const float* v, int kv_dim, int64_t slot,
             int64_t token_bytes, uint8_t* k_pool, uint8_t* v_pool);

// out[0, head_dim) = softmax(K[0, n_kv) . q) . V[0, n_kv) for KV head
// `kv_head`. q: [head_dim] (pre-scaled, f16-rounded). scores: scratch of
// n_kv floats. REQUIRES: n_kv >= 1; block_table covers [0, n_kv).
void AttendHead(const AttentionKernels& kernels, const float* q, const KvLayerView& kv,
                std::span<const int32_t> block_table, int kv_head, int head_dim, int n_kv,
                float* scores, float* out);

// One layer's attention block for rows [0, num_rows) of a forward batch.
struct AttentionLayerArgs {
  std::span<const SequenceSlice> sequences;
  int64_t num_rows = 0;
  const int32_t* row_seq = nullptr;      // [num_rows] index into sequences
  const int32_t* row_pos = nullptr;      // [num_rows] position in its sequence
  // [num_rows] 1 = llama.cpp prompt rounding, 0 = decode rounding; nullptr:
  // prompt rounding for rows of slices with >= 2 tokens.
  const uint8_t* row_batched = nullptr;
  const float* rope = nullptr;           // [num_rows][rope_dims] (RopeTable)
  int rope_dims = 0;
  float q_scale = 1.0f;                  // 1 / sqrt(head_dim)
  // [num_rows][num_heads * head_dim + 2 * kv_dim] Q | K | V. Q and K are
  // rotated in place; Q is also scaled and rounded to f16 values.
  float* qkv = nullptr;
  float* out = nullptr;                  // [num_rows][num_heads * head_dim]
  int num_heads = 0;
  int num_kv_heads = 0;                  // divides num_heads
  int head_dim = 0;
  KvCacheType kv_type = KvCacheType::kF16;
  uint8_t* k_pool = nullptr;             // this layer's pools (layout above)
  uint8_t* v_pool = nullptr;
  int block_size = 0;
  int64_t kv_token_bytes = 0;            // KvTokenBytes(kv_type, kv_dim)
};

// RoPE on Q and K (fused like llama.cpp's build: attention_rope.h), Q *=
// q_scale then rounded to f16, every row's K/V stored
// in its slot, then out = causal attention of each row over positions
// [0, row_pos] of its sequence (numerics above). Rows need not be grouped
// by sequence. Results do not depend on the thread count or on the other
// rows of the batch (beyond their K/V). Scratch is thread_local.
// REQUIRES: block tables cover every row's position; no two rows share a slot.
void RunAttentionLayer(const AttentionLayerArgs& args, ThreadPool& pool);

}  // namespace phi3

#endif  // PHI3_ENGINE_MODEL_ATTENTION_H_
