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
// MatMul computes every decode-rounded output element with exactly this
// function. For Q8_0, Q4_1, Q5_K, Q6_K, F16 and BF16 it is bit-identical on
// every SIMD path (scalar included) to llama.cpp's x86 (zen4 build)
// ggml_vec_dot_q8_0_q8_0 / _q4_1_q8_1 / _q5_K_q8_K / _q6_K_q8_K /
// ggml_vec_dot_f16 / _bf16 (F16: 4 x 16-lane fma accumulators per 64
// elements, tree sum, n % 64 tail added in double; BF16: the same with
// 2 x 16 lanes of vdpbf16ps, see simd_bf16_ops.h); Q4_0/Q4_K follow
// llama.cpp's repacked gemv on every path (matmul.h has the prompt-batch
// variants).
// REQUIRES: n % block_elements(weight) == 0; weight is a weight type.
float DotRow(TensorType weight, const void* w_row, const void* a_row, int64_t n);

// llama.cpp's x86 (AVX-512 build) activation numerics, bit for bit on every
// SIMD path: its SwiGLU and softmax use a vector expf approximation (max
// error ~1.5 ulp, so plain std::exp differs in ~25% of elements) over
// chunks of 16 floats and libm expf over a row's last n % 16 elements.
// y[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g))  (ggml_vec_swiglu_f32)
void SiluMulRow(const float* gate, const float* up, int64_t n, float* y);
// y[i] = exp(x[i]) as ggml_vec_soft_max_f32 computes its terms (pass
// x - max over the same row layout llama.cpp uses, incl. masked padding,
// for identical chunking). y may alias x.
void ExpRow(const float* x, int64_t n, float* y);

// Conversions for f16 buffers (e.g. a KV cache); same rounding as F32ToF16.
void ConvertF32ToF16Row(const float* x, uint16_t* dst, int64_t n);
void ConvertF16ToF32Row(const uint16_t* x, float* dst, int64_t n);

}  // namespace phi3

#endif  // PHI3_ENGINE_KERNELS_DOT_H_
