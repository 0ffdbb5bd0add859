#include "engine/kernels/matmul.h"

#include <algorithm>
#include <cassert>
#include <vector>

#include "engine/kernels/dot.h"
#include "engine/kernels/kernel_table.h"
#include "engine/kernels/packed_internal.h"
#include "engine/kernels/quantize.h"

namespace phi3 {
namespace {

// Rows per work item: small enough to balance threads, large enough that
// the tile kernels see several row groups of 4.
constexpr int64_t kRowTile = 16;
// Token blocks keep the encoded activations of one block in L2 while the
// row tiles stream past; weights are re-read once per block.
constexpr int64_t kTokenBlockBytes = 256 * 1024;

uint8_t* ScratchBytes(size_t bytes) {
  thread_local std::vector<uint8_t> scratch;
  if (scratch.size() < bytes) scratch.resize(bytes);
  return scratch.data();
}

}  // namespace

int64_t ActivationRowBytes(TensorType weight, int64_t cols) {
  return RowBytes(ActivationType(weight), cols);
}

void QuantizeActivationRow(TensorType act, const float* x, void* dst, int64_t n) {
  const internal::QuantizeFn fn = internal::ActiveKernelTable().ForActivation(act);
  if (fn == nullptr) {
    std::copy(x, x + n, static_cast<float*>(dst));
  } else {
    fn(x, dst, n);
  }
}

float DotRow(TensorType weight, const void* w_row, const void* a_row, int64_t n) {
  const internal::TypeKernels* k = internal::ActiveKernelTable().ForWeight(weight);
  assert(k != nullptr);
  return k->dot(w_row, a_row, n);
}

void SiluMulRow(const float* gate, const float* up, int64_t n, float* y) {
  internal::ActiveKernelTable().silu_mul(gate, up, n, y);
}

void ExpRow(const float* x, int64_t n, float* y) { internal::ActiveKernelTable().exp_row(x, n, y); }

void ConvertF32ToF16Row(const float* x, uint16_t* dst, int64_t n) {
  internal::ActiveKernelTable().to_f16(x, dst, n);
}

void ConvertF16ToF32Row(const uint16_t* x, float* dst, int64_t n) {
  // Exact conversion; the compiler vectorises this well enough for its uses.
  for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(x[i]);
}

void QuantizeActivations(TensorType weight, const float* x, int64_t num_tokens, int64_t cols,
                         void* xq, ThreadPool& pool) {
  const TensorType act = ActivationType(weight);
  const int64_t row_bytes = RowBytes(act, cols);
  uint8_t* out = static_cast<uint8_t*>(xq);
  auto body = [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) {
      QuantizeActivationRow(act, x + t * cols, out + t * row_bytes, cols);
    }
  };
  if (num_tokens == 1) {
    body(0, 1, 0);  // a pool dispatch costs more than one row
  } else {
    pool.ParallelFor(num_tokens, body);
  }
}

void MatMulQuantized(const WeightMatrix& w, const void* xq, int64_t num_tokens, float* y,
                     int64_t y_stride, ThreadPool& pool, const MatMulRounding& rounding) {
  if (num_tokens <= 0 || w.rows <= 0) return;
  if (w.layout == WeightLayout::kPacked16) {
    internal::MatMulPacked(w, static_cast<const uint8_t*>(xq), num_tokens, y, y_stride, pool,
                           rounding.q4k_gemm_tokens);
    return;
  }
  const internal::KernelTable& table = internal::ActiveKernelTable();
  const internal::TypeKernels* k = table.ForWeight(w.type);
  assert(k != nullptr);
  const internal::TileFn tile = k->tile;
  // Tokens [0, gemm_tokens) use tile_gemm: the type's prompt-batch rounding
  // where it has one (matmul.h).
  int64_t gemm_tokens = 0;
  internal::TileFn tile_gemm = nullptr;
  if (w.type == TensorType::kQ4_K) {
    gemm_tokens = rounding.q4k_gemm_tokens;
    tile_gemm = table.q4_k_pairs.tile;
  } else if (w.type == TensorType::kF16 && w.rows % 4 == 0 && w.cols % 16 == 0) {
    gemm_tokens = rounding.batch_tokens;
    tile_gemm = table.f16_batch.tile;
  } else if (w.type == TensorType::kBF16 && w.rows % 4 == 0 && w.cols % 32 == 0) {
    gemm_tokens = rounding.batch_tokens;
    tile_gemm = table.bf16_batch.tile;
  }
  gemm_tokens = std::clamp<int64_t>(gemm_tokens, 0, num_tokens);
  const int64_t w_stride = RowBytes(w.type, w.cols);
  const int64_t a_stride = ActivationRowBytes(w.type, w.cols);
  const uint8_t* wdata = static_cast<const uint8_t*>(w.data);
  const uint8_t* adata = static_cast<const uint8_t*>(xq);
  const int64_t token_block =
      std::max<int64_t>(4, std::min<int64_t>(64, kTokenBlockBytes / std::max<int64_t>(1, a_stride)) & ~int64_t{3});
  const int64_t num_tiles = (w.rows + kRowTile - 1) / kRowTile;
  const int64_t cols = w.cols;
  const int64_t chunk = internal::MatMulChunk(num_tiles, pool);
  pool.ParallelForDynamic(num_tiles, chunk, [&](int64_t begin, int64_t end, int) {
    for (int64_t t0 = 0; t0 < num_tokens; t0 += token_block) {
      const int nt = static_cast<int>(std::min(token_block, num_tokens - t0));
      for (int64_t tile_index = begin; tile_index < end; ++tile_index) {
        const int64_t r0 = tile_index * kRowTile;
        const int nr = static_cast<int>(std::min(kRowTile, w.rows - r0));
        const int ng = static_cast<int>(std::clamp<int64_t>(gemm_tokens - t0, 0, nt));
        if (ng > 0) {
          tile_gemm(wdata + r0 * w_stride, w_stride, nr, adata + t0 * a_stride, a_stride, ng,
                    cols, y + t0 * y_stride + r0, y_stride);
        }
        if (ng < nt) {
          tile(wdata + r0 * w_stride, w_stride, nr, adata + (t0 + ng) * a_stride, a_stride,
               nt - ng, cols, y + (t0 + ng) * y_stride + r0, y_stride);
        }
      }
    }
  });
}

void MatMulQuantized(const WeightMatrix& w, const void* xq, int64_t num_tokens, float* y,
                     int64_t y_stride, ThreadPool& pool, int64_t q4k_gemm_tokens) {
  MatMulQuantized(w, xq, num_tokens, y, y_stride, pool,
                  MatMulRounding{.batch_tokens = 0, .q4k_gemm_tokens = q4k_gemm_tokens});
}

void MatMul(const WeightMatrix& w, const float* x, int64_t num_tokens, float* y,
            int64_t y_stride, ThreadPool& pool, const MatMulRounding& rounding) {
  if (num_tokens <= 0) return;
  if (ActivationType(w.type) == TensorType::kF32) {
    MatMulQuantized(w, x, num_tokens, y, y_stride, pool, rounding);
    return;
  }
  const int64_t a_stride = ActivationRowBytes(w.type, w.cols);
  uint8_t* xq = ScratchBytes(static_cast<size_t>(a_stride * num_tokens));
  QuantizeActivations(w.type, x, num_tokens, w.cols, xq, pool);
  MatMulQuantized(w, xq, num_tokens, y, y_stride, pool, rounding);
}

void MatMul(const WeightMatrix& w, const float* x, int64_t num_tokens, float* y,
            int64_t y_stride, ThreadPool& pool, int64_t q4k_gemm_tokens) {
  MatMul(w, x, num_tokens, y, y_stride, pool,
         MatMulRounding{.batch_tokens = 0, .q4k_gemm_tokens = q4k_gemm_tokens});
}

void MatMul(const WeightMatrix& w, const float* x, int64_t num_tokens, float* y,
            ThreadPool& pool) {
  MatMul(w, x, num_tokens, y, w.rows, pool);
}

}  // namespace phi3
