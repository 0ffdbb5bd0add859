// Block layouts of the ggml tensor types phi3serve supports, conversions
// between f32 and f16/bf16, and reference (scalar) quantizers/dequantizers.
//
// Layouts are byte-for-byte ggml's (ggml/src/ggml-common.h): GGUF weights are
// read in place through these structs. Every struct is packed to the exact
// ggml size (static_asserts below) and only 2-byte aligned (4 for BlockQ8_K),
// so rows may start at any even offset of an mmapped file (F32 rows: any
// multiple of 4).
//
// Thread safety: every function here is pure (reentrant).
#ifndef PHI3_ENGINE_KERNELS_QUANTIZE_H_
#define PHI3_ENGINE_KERNELS_QUANTIZE_H_

#include <cstdint>
#include <cstring>

#include "engine/common/tensor_type.h"

namespace phi3 {

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK8_1 = 32;
inline constexpr int kQK_K = 256;      // super-block size of the K-quants
inline constexpr int kKScaleBytes = 12;  // packed 6-bit scales + mins, 8 each

// x[i] = d * (q[i] - 8). Element j < 16 in the low nibble of qs[j], element
// j + 16 in the high nibble of qs[j].
struct BlockQ4_0 {
  uint16_t d;  // f16
  uint8_t qs[kQK4_0 / 2];
};
// x[i] = d * q[i] + m, nibbles laid out as in BlockQ4_0.
struct BlockQ4_1 {
  uint16_t d;  // f16
  uint16_t m;  // f16
  uint8_t qs[kQK4_1 / 2];
};
// x[i] = d * qs[i].
struct BlockQ8_0 {
  uint16_t d;  // f16
  int8_t qs[kQK8_0];
};
// Activation block for Q4_1 dots: s = d * sum(qs) (f16) carries the offset.
struct BlockQ8_1 {
  uint16_t d;  // f16
  uint16_t s;  // f16
  int8_t qs[kQK8_1];
};
// 8 sub-blocks of 32: x = d * sc[j] * q - dmin * m[j]; sc/m are 6-bit, packed
// in `scales` as ggml's get_scale_min_k4 reads them. Nibbles: for each 64-
// element chunk c, qs[32c + l] holds element 64c + l (low) and 64c + 32 + l
// (high).
struct BlockQ4_K {
  uint16_t d;     // f16, super-scale of the scales
  uint16_t dmin;  // f16, super-scale of the mins
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};
// As BlockQ4_K plus a fifth bit: bit c of qh[l] (c = 2*chunk for the low
// half, 2*chunk + 1 for the high half) adds 16 to the quant.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
// 16 sub-blocks of 16: x = d * scales[j] * (q - 32), q 6-bit = 4 low bits in
// ql + 2 high bits in qh (layout: see DequantizeRow in quantize.cc).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;  // f16
};
// Activation block for K-quant dots. bsums[j] = sum of qs[16j .. 16j+15].
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

// ---- scalar conversions ----------------------------------------------------

// IEEE binary16 -> f32 (exact, subnormals and NaN payloads kept).
float F16ToF32(uint16_t h);
// f32 -> binary16, round to nearest even; overflow -> inf; NaN stays NaN
// (quiet, top payload bits kept, as F16C's vcvtps2ph does).
uint16_t F32ToF16(float f);

inline float BF16ToF32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// f32 -> bf16 as ggml does: round to nearest even, NaN -> truncated + quiet
// bit forced (0x40), so a NaN never rounds into an infinity.
inline uint16_t F32ToBF16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64);
  return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

// Decodes the 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block.
inline void GetScaleMinK4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

// ---- types ------------------------------------------------------------------

// The type activations are converted to before a dot with weights of type
// `weight` (ggml's vec_dot_type): F32->F32, F16->F16, BF16->BF16,
// Q4_0/Q8_0->Q8_0, Q4_1->Q8_1, Q4_K/Q5_K/Q6_K->Q8_K.
// REQUIRES: weight is a weight type (TensorTypeTraits::weight_type).
TensorType ActivationType(TensorType weight);

// True for the types DequantizeRow/QuantizeRow accept (all in TensorType).
bool IsSupportedType(TensorType type);

// ---- reference row codecs ---------------------------------------------------

// dst[0, n) = values of the n elements encoded at src.
// REQUIRES: n % block_elements(type) == 0; dst holds n floats. Works for
// every TensorType, including the activation types.
void DequantizeRow(TensorType type, const void* src, float* dst, int64_t n);

// Encodes src[0, n) into RowBytes(type, n) bytes at dst.
// Weight types: a quality quantizer (per-block search for K-quants) used by
// phi3-mkmodel; deterministic. Activation types (Q8_0, Q8_1, Q8_K) and the
// float types: exactly the encoding MatMul uses for activations, i.e. ggml's
// x86 CPU numerics (Q8_0/Q8_1: d = amax/127, q = rne(x * 127/amax);
// Q8_K: ggml's quantize_row_q8_K_ref).
// REQUIRES: n % block_elements(type) == 0; inputs finite for quantized types.
void QuantizeRow(TensorType type, const float* src, void* dst, int64_t n);

}  // namespace phi3

#endif  // PHI3_ENGINE_KERNELS_QUANTIZE_H_
