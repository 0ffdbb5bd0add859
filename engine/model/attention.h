// Causal attention of one query head over a sequence's paged KV cache.
//
// KV pool layout (per layer, K and V alike):
//   kF16:  [num_blocks][block_size][kv_dim] f16
//   kQ8_0: [num_blocks][block_size][kv_dim / 32] BlockQ8_0
// Token t of a sequence lives in block block_table[t / block_size], slot
// t % block_size; head h's values are elements [h * head_dim, (h+1) * head_dim).
//
// Numerics follow llama.cpp's non-flash CPU path: scores = K . q with q
// already scaled and rounded to f16 values, softmax in f32 (sum in double),
// probabilities rounded to f16 before weighting V, f32 accumulation.
//
// Thread safety: pure functions; callers run heads in parallel on distinct
// outputs.
#ifndef PHI3_ENGINE_MODEL_ATTENTION_H_
#define PHI3_ENGINE_MODEL_ATTENTION_H_

#include <cstdint>
#include <span>

#include "engine/engine.h"  // KvCacheType

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

}  // namespace phi3

#endif  // PHI3_ENGINE_MODEL_ATTENTION_H_
