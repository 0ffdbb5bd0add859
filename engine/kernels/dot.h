// Row-level kernels on the active SIMD path (see cpu_features.h): activation
// encoding and weight-row x activation-row dot products, for callers that
// need single dots (attention over an f16 KV cache, tests).
//
// Thread safety: all functions are reentrant.
#ifndef PHI3_ENGINE_KERNELS_DOT_H_
#define PHI3_ENGINE_KERNELS_DOT_H_

#include <cstdint>

#include "engine/common/tensor_type.h"

namespace phi3 {

// Encodes x[0, n) as activation type `act` (Q8_0, Q8_1, Q8_K, F16, BF16 or
// F32) into RowBytes(act, n) bytes at dst. Bit-identical to
// QuantizeRow(act, ...) on every SIMD path.
// REQUIRES: n % block_elements(act) == 0.
void QuantizeActivationRow(TensorType act, const float* x, void* dst, int64_t n);

// Dot of a weight row of type `weight` with an activation row of type
// ActivationType(weight), both n elements, accumulated in f32 (integer dots
// exact). Always the same float for the same inputs on a given SIMD path;
// MatMul computes every output element with exactly this function.
// REQUIRES: n % block_elements(weight) == 0; weight is a weight type.
float DotRow(TensorType weight, const void* w_row, const void* a_row, int64_t n);

// Conversions for f16 buffers (e.g. a KV cache); same rounding as F32ToF16.
void ConvertF32ToF16Row(const float* x, uint16_t* dst, int64_t n);
void ConvertF16ToF32Row(const uint16_t* x, float* dst, int64_t n);

}  // namespace phi3

#endif  // PHI3_ENGINE_KERNELS_DOT_H_
