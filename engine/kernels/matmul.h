// y = x W^T for quantized or float weight matrices, over a batch of tokens.
//
// Numerics follow llama.cpp's CPU backend: x is first encoded in the weight
// type's activation type (Q8_0/Q8_1/Q8_K blocks for quantized weights, f16
// for F16, bf16 for BF16, f32 for F32), then each output is one dot product
// (DotRow) accumulated in f32.
//
// Guarantees:
// - Batch invariance: y[t] depends only on x[t] and W, never on num_tokens,
//   on the other tokens, or on the pool's thread count (bit-identical).
// - For num_tokens > 1 the weights are streamed from memory once per token
//   block of up to 64 tokens (row tiles stay in cache while every token of
//   the block uses them; register tiles of 4-8 rows x 2-4 tokens). A batch
//   then costs compute, not bandwidth: ~90 GFLOP/s per core for the 8-bit
//   types and f16 on AVX-512 (Zen 4), i.e. batching pays until ~4-8 tokens
//   per step, beyond which cost grows linearly with tokens. Packed Q4_0/Q4_1/Q8_0/Q4_K/Q5_K/Q6_K
//   (WeightLayout::kPacked16) take up to 16 tokens per pass over the weights
//   (tiles of 16 rows x 1..16 tokens) and reach ~140-165 G int8 MAC/s per
//   core on Zen 4 (vpdpbusd peak: 224; llama.cpp's per-block scale mul + fma
//   share its pipes): 16 tokens cost ~3.5-4x one DRAM-bound token.
//
// Thread safety: calls may run concurrently from different threads, each
// with its own ThreadPool (or sharing one: the pool serialises jobs). The
// activation scratch is per calling thread and grows to the largest call.
#ifndef PHI3_ENGINE_KERNELS_MATMUL_H_
#define PHI3_ENGINE_KERNELS_MATMUL_H_

#include <cstdint>

#include "engine/common/tensor_type.h"
#include "engine/kernels/thread_pool.h"

namespace phi3 {

// How a WeightMatrix's bytes are ordered.
enum class WeightLayout {
  kRowMajor,  // row r starts at data + r * RowBytes(type, cols)
  kPacked16,  // Q4_0/Q4_1/Q8_0/Q4_K/Q5_K/Q6_K interleaved in groups of 16 rows (packed_weights.h)
};

// A rows x cols weight matrix. Not owned (row-major: usually points into the
// mmap; packed: into a PackedWeights). MatMul gives the same numbers for
// either layout of the same weights.
struct WeightMatrix {
  TensorType type = TensorType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  WeightLayout layout = WeightLayout::kRowMajor;
};

// llama.cpp rounds a mul_mat differently when it has >= 2 token columns (a
// prompt batch) than for one token (decode), for some weight types (all
// checked against its x86 zen4 build, the oracle's):
// - Q4_K (repacked): tokens in the full groups of 4 of a batch (its gemm)
//   get one fma per 64 elements; the others (its gemv: decode, the last
//   n % 4 tokens of a batch) one per 256-element super-block.
// - F16: a batch (when rows % 4 == 0 and cols % 16 == 0) goes through
//   tinyBLAS (one 16-lane fma chain per output); decode through
//   ggml_vec_dot_f16 (4 x 16 lanes per 64 elements, double tail).
// - BF16: likewise, with vdpbf16ps steps of 32 elements: a batch (rows % 4
//   == 0, cols % 32 == 0) through tinyBLAS (one 16-lane chain per output),
//   decode through ggml_vec_dot_bf16 (2 x 16 lanes per 64, double tail).
// - Q8_0, Q5_K, Q6_K, Q4_0 and the rest: the same rounding either way.
// By default every token gets the decode rounding. A caller that mirrors
// llama.cpp's batches orders the tokens of a call by class and says where
// the classes end; a token's output depends only on x[t], W and its class.
struct MatMulRounding {
  // Tokens [0, batch_tokens) belong to llama.cpp mul_mats of >= 2 columns
  // (for a prompt of P tokens evaluated in one llama.cpp ubatch: its P
  // tokens; the last layer's after-attention rows and the output head: the
  // output rows, if there are >= 2 of them).
  int64_t batch_tokens = 0;
  // Tokens [0, q4k_gemm_tokens) are in the full groups of 4 of such batches
  // (prompt of P tokens: P - P % 4). REQUIRES q4k_gemm_tokens <=
  // batch_tokens when both are used.
  int64_t q4k_gemm_tokens = 0;
};

// Bytes of one encoded activation row for weights of type `weight`.
int64_t ActivationRowBytes(TensorType weight, int64_t cols);

// x: [num_tokens][cols] f32; y: [num_tokens][y_stride] f32, of which
// columns [0, w.rows) of each row are written.
// REQUIRES: w.type is a weight type; w.cols % block_elements == 0;
// y_stride >= w.rows; x and y do not overlap.
void MatMul(const WeightMatrix& w, const float* x, int64_t num_tokens, float* y,
            ThreadPool& pool);
void MatMul(const WeightMatrix& w, const float* x, int64_t num_tokens, float* y,
            int64_t y_stride, ThreadPool& pool, const MatMulRounding& rounding);
// Shorthand: {.batch_tokens = 0, .q4k_gemm_tokens = q4k_gemm_tokens}.
void MatMul(const WeightMatrix& w, const float* x, int64_t num_tokens, float* y,
            int64_t y_stride, ThreadPool& pool, int64_t q4k_gemm_tokens = 0);

// Encodes x ([num_tokens][cols] f32) for weights of type `weight` into
// xq: [num_tokens][ActivationRowBytes(weight, cols)] bytes (in parallel).
void QuantizeActivations(TensorType weight, const float* x, int64_t num_tokens, int64_t cols,
                         void* xq, ThreadPool& pool);

// As MatMul, with activations already encoded by QuantizeActivations (lets
// several matrices that read the same input share one encoding).
void MatMulQuantized(const WeightMatrix& w, const void* xq, int64_t num_tokens, float* y,
                     int64_t y_stride, ThreadPool& pool, const MatMulRounding& rounding);
void MatMulQuantized(const WeightMatrix& w, const void* xq, int64_t num_tokens, float* y,
                     int64_t y_stride, ThreadPool& pool, int64_t q4k_gemm_tokens = 0);

}  // namespace phi3

#endif  // PHI3_ENGINE_KERNELS_MATMUL_H_
