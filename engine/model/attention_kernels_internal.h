// Per-ISA attention primitives; each lives in a source file compiled with
// its own target flags and is only called after a CPUID check.
#ifndef PHI3_ENGINE_MODEL_ATTENTION_KERNELS_INTERNAL_H_
#define PHI3_ENGINE_MODEL_ATTENTION_KERNELS_INTERNAL_H_

#include "engine/model/attention.h"

namespace phi3::internal {

// AVX2 + FMA + F16C. REQUIRES: the CPU has them.
const AttentionKernels& Avx2AttentionKernels();

// Tile kernels of RunAttentionLayer over f32 tiles of KV positions of one
// head (tile[j * head_dim + d]), or straight from an f16 pool (rows at
// base + offsets[j]). Every level computes bit-identical results (the orders
// are fixed in attention.h; only the vector width differs).
// REQUIRES: head_dim % 16 == 0, head_dim <= 128 for the *_decode_f16 kernels.
struct AttentionTileKernels {
  const char* name;
  // scores[j] = q . k_j, prompt rounding, j < 16.
  void (*scores_prompt)(const float* q, const float* k_tile, int head_dim, float* scores);
  // scores[j] = q . k_j, decode rounding, j < 16.
  void (*scores_decode)(const float* q, const float* k_tile, int head_dim, float* scores);
  // Lane classes: for j < n (the tile starting at a multiple of 64) with
  // p[j] != 0, in ascending j: acc[(j % classes) * head_dim + d] =
  // fma(v_j[d], p[j], acc[...]). classes is 16 or 64.
  void (*accumulate_pv)(const float* p, const float* v_tile, int n, int head_dim, int classes,
                        float* acc);
  // dst[i] = f16 x[i] as f32 (exact), n % 16 == 0.
  void (*f16_to_f32)(const uint16_t* x, float* dst, int n);
  // x[i] = the f16 value nearest x[i] (round to nearest even), n % 16 == 0.
  void (*round_f16)(float* x, int n);
  // Decode straight from an f16 pool, position j's row at base + offsets[j]
  // (bytes). scores[j] = q . k_j with decode rounding for j < round_up(n, 16)
  // (offsets cover that many rows; the caller masks j >= n). prefetch[0,
  // num_prefetch): pools (null entries ignored) whose rows at the same
  // offsets the caller reads soon; a level may prefetch them.
  void (*scores_decode_f16)(const float* q, const uint8_t* base, const int64_t* offsets, int n,
                            int head_dim, float* scores, const uint8_t* const* prefetch,
                            int num_prefetch);
  // out[0, head_dim) = P x V with decode rounding over positions [0, n):
  // lane classes j % 64 accumulated as accumulate_pv with classes = 64 (p[j]
  // == 0 skipped), then folded ((0 + 2) + (1 + 3)) and tree16 over the 16
  // lanes (attention.h).
  void (*pv_decode_f16)(const float* p, const uint8_t* base, const int64_t* offsets, int n,
                        int head_dim, float* out);
  // NEOX RoPE of one head in place, llama.cpp's fused rounding (attention_rope.h).
  void (*rope_neox)(const float* cs, int rope_dims, float* x);
};

// The tables per SIMD level (SelectBySimdLevel); each REQUIRES its level.
const AttentionTileKernels& ScalarTileKernels();
const AttentionTileKernels& Avx2TileKernels();
const AttentionTileKernels& Avx512TileKernels();

// Calls f.template operator()<NV>() with NV = head_dim / 16 chunks of 16
// values, so that SIMD kernels keep a head in registers. REQUIRES: 16 <=
// head_dim <= 128.
template <typename F>
inline void WithHeadChunks(int head_dim, F&& f) {
  switch (head_dim / 16) {
    case 1: return f.template operator()<1>();
    case 2: return f.template operator()<2>();
    case 3: return f.template operator()<3>();
    case 4: return f.template operator()<4>();
    case 5: return f.template operator()<5>();
    case 6: return f.template operator()<6>();
    case 7: return f.template operator()<7>();
    default: return f.template operator()<8>();
  }
}

// tree16 of attention.h.
inline float Tree16(const float* x) {
  float s8[8], s4[4], s2[2];
  for (int i = 0; i < 8; ++i) s8[i] = x[i] + x[i + 8];
  for (int i = 0; i < 4; ++i) s4[i] = s8[i] + s8[i + 4];
  for (int i = 0; i < 2; ++i) s2[i] = s4[i] + s4[i + 2];
  return s2[0] + s2[1];
}

}  // namespace phi3::internal

#endif  // PHI3_ENGINE_MODEL_ATTENTION_KERNELS_INTERNAL_H_
