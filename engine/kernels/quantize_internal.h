// Internal to engine/kernels: per-type reference quantizers and helpers.
#ifndef PHI3_ENGINE_KERNELS_QUANTIZE_INTERNAL_H_
#define PHI3_ENGINE_KERNELS_QUANTIZE_INTERNAL_H_

#include <cstdint>
#include <cstring>

#include "engine/kernels/quantize.h"

namespace phi3::internal {

// Round to nearest, ties to even, for |f| <= 2^22 (ggml's nearest_int).
inline int NearestInt(float f) {
  const float v = f + 12582912.0f;  // 1.5 * 2^23
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// Activation quantizers: the exact encodings every SIMD path must reproduce.
void QuantizeRowQ8_0Ref(const float* x, BlockQ8_0* y, int64_t n);
void QuantizeRowQ8_1Ref(const float* x, BlockQ8_1* y, int64_t n);
void QuantizeRowQ8_KRef(const float* x, BlockQ8_K* y, int64_t n);

// Weight quantizers (quantize_weights.cc).
void QuantizeRowQ4_0(const float* x, BlockQ4_0* y, int64_t n);
void QuantizeRowQ4_1(const float* x, BlockQ4_1* y, int64_t n);
void QuantizeRowQ4_K(const float* x, BlockQ4_K* y, int64_t n);
void QuantizeRowQ5_K(const float* x, BlockQ5_K* y, int64_t n);
void QuantizeRowQ6_K(const float* x, BlockQ6_K* y, int64_t n);

}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_QUANTIZE_INTERNAL_H_
