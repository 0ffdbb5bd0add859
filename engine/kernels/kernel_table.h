// Internal to engine/kernels: the per-SIMD-level function tables.
//
// Contract every implementation keeps (tests pin it):
// - quantize_* produce bytes identical to the scalar reference
//   (QuantizeRow), so activations are the same on every path;
// - for a given level, tile() writes for each (row, token) exactly the
//   float dot() returns for that pair: same operations in the same order,
//   whatever nr/nt; so a token's outputs never depend on the batch.
#ifndef PHI3_ENGINE_KERNELS_KERNEL_TABLE_H_
#define PHI3_ENGINE_KERNELS_KERNEL_TABLE_H_

#include <cstdint>

#include "engine/common/tensor_type.h"

namespace phi3::internal {

// Dot of one weight row w and one activation row a, n elements.
using DotFn = float (*)(const void* w, const void* a, int64_t n);
// y[t * y_stride + r] = dot(w + r * w_stride, a + t * a_stride, n)
// for r in [0, nr), t in [0, nt).
using TileFn = void (*)(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a,
                        int64_t a_stride, int nt, int64_t n, float* y, int64_t y_stride);
// Encodes x[0, n) as an activation row.
using QuantizeFn = void (*)(const float* x, void* dst, int64_t n);
// y[i] = silu(gate[i]) * up[i] / y[i] = exp(x[i]) (dot.h: SiluMulRow, ExpRow).
using SiluMulFn = void (*)(const float* gate, const float* up, int64_t n, float* y);
using ExpRowFn = void (*)(const float* x, int64_t n, float* y);

struct TypeKernels {
  DotFn dot = nullptr;
  TileFn tile = nullptr;
};

struct KernelTable {
  TypeKernels f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k;
  // Q4_K in llama.cpp's gemm rounding (one fma per 64 elements); q4_k is
  // its gemv rounding (per super-block). See matmul.h.
  TypeKernels q4_k_pairs;
  // F16 in llama.cpp's prompt-batch (tinyBLAS) rounding; f16 is its decode
  // (ggml_vec_dot_f16) rounding. See matmul.h.
  TypeKernels f16_batch;
  // BF16 in tinyBLAS's rounding (prompt batches); bf16 is ggml_vec_dot_bf16's.
  TypeKernels bf16_batch;
  QuantizeFn to_f16 = nullptr, to_bf16 = nullptr, to_q8_0 = nullptr, to_q8_1 = nullptr,
             to_q8_k = nullptr;
  SiluMulFn silu_mul = nullptr;
  ExpRowFn exp_row = nullptr;

  // The kernels for weight type `w`, or nullptr for a non-weight type.
  const TypeKernels* ForWeight(TensorType w) const;
  // The activation encoder for `act` (nullptr for F32: activations are used
  // as they are).
  QuantizeFn ForActivation(TensorType act) const;
};

const KernelTable& ScalarKernelTable();
const KernelTable& Avx2KernelTable();    // REQUIRES: CPU has AVX2+FMA+F16C
const KernelTable& Avx512KernelTable();  // REQUIRES: CPU has the kAvx512 set
// Avx512KernelTable() with bf16 and bf16_batch on the AVX512_BF16 instruction
// (same results, faster). REQUIRES: CpuHasAvx512Bf16().
const KernelTable& Avx512Bf16KernelTable();

// The table of ActiveSimdLevel().
const KernelTable& ActiveKernelTable();

// A tile that loops over dot(): correct for any DotFn.
template <DotFn kDot>
void TileByDot(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a, int64_t a_stride,
               int nt, int64_t n, float* y, int64_t y_stride) {
  for (int r = 0; r < nr; ++r) {
    for (int t = 0; t < nt; ++t) {
      y[t * y_stride + r] = kDot(w + r * w_stride, a + t * a_stride, n);
    }
  }
}

}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_KERNEL_TABLE_H_
