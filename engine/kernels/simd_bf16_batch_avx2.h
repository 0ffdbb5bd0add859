// BF16 prompt batches in tinyBLAS's order (simd_bf16_ops.h) with AVX2: the
// bf16_batch tile of the AVX2 table. Part of the x86 SIMD kernels: included
// by simd_bf16_ops.h in dot_avx2.cc only, inside its anonymous namespace.
//
// Why this shape: an emulated vdpbf16ps step widens 32 bf16 elements of
// each operand to f32 (odd and even elements, 4 integer ops per operand)
// for 4 fmas, so widening inside a register tile costs as much as its fmas.
// Here both operands are widened into f32 scratch first, a chunk of
// kBf16WideChunkBlocks blocks at a time (the tile's weight rows once per
// chunk, each token group's activations once per chunk for all the rows),
// and the register tile only loads and fmas. A 16-lane accumulator is two
// independent 8-lane chains (lanes 0-7 see only elements [0, 16) of each
// block, lanes 8-15 only [16, 32)), so the tile runs one half after the
// other: R x T ymm accumulators instead of 2 R T, a wider tile in 16 ymm
// registers. Each (row, token, lane) chain still takes its steps in order,
// odd element first, and ends in the same tree sum: the results are
// BF16BatchKernel's for every tile shape and token count.
#ifndef PHI3_ENGINE_KERNELS_SIMD_BF16_BATCH_AVX2_H_
#define PHI3_ENGINE_KERNELS_SIMD_BF16_BATCH_AVX2_H_

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/kernels/simd_common.h"
#include "engine/kernels/simd_v16.h"

namespace phi3::internal {
namespace {

// One 8-lane half of a 32-element block, widened: lane j holds the pair
// (2j, 2j + 1) of the half's 16 elements.
struct alignas(64) Bf16WideHalf {
  float odd[8];   // element 2j + 1
  float even[8];  // element 2j
};

// The 8-lane partial sums of one (row, token, half) chain between chunks.
struct alignas(32) Bf16Partial {
  float v[8];
};

// Scratch of the calling thread (one per Slot), >= n entries; grows to the
// largest call.
template <typename T, int Slot>
T* Bf16Scratch(size_t n) {
  thread_local std::vector<T> scratch;
  if (scratch.size() < n) scratch.resize(n);
  return scratch.data();
}

// 32-element blocks per chunk: 16 weight rows widened are 16 KiB, a token
// group's activations 4 KiB, both in L1 (measured on Zen 5, 2 threads:
// 8 blocks ~5% faster than 16 or 4, 32 and 64 slower still).
inline constexpr int64_t kBf16WideChunkBlocks = 8;
// 12 accumulator + 3 weight + 1 activation ymm registers (3 x 4 measured
// faster than 2 x 6, 2 x 5 and 5 x 2; 4 x 3 does not fit).
inline constexpr int kBf16WideRows = 3, kBf16WideTokens = 4;

inline const uint16_t* Bf16WideRow(const uint8_t* base, int64_t stride, int i) {
  return reinterpret_cast<const uint16_t*>(base + i * stride);
}

// Blocks [b0, b0 + nb) of a bf16 row -> half h of block b0 + b at
// out[h * half_stride + b]. If kPrefetch, also prefetches (into L2) the
// line one chunk ahead of each block: the weights stream from memory once
// per token block, and the chunks of 16 rows are too short a run per row
// for the hardware prefetchers.
template <bool kPrefetch>
void WidenBf16Blocks(const uint16_t* row, int64_t b0, int64_t nb, Bf16WideHalf* out,
                     int64_t half_stride) {
  const __m256i odd_mask = _mm256_set1_epi32(int(0xFFFF0000));
  for (int64_t b = 0; b < nb; ++b) {
    const uint16_t* p = row + 32 * (b0 + b);
    if constexpr (kPrefetch) {
      _mm_prefetch(reinterpret_cast<const char*>(p + 32 * kBf16WideChunkBlocks), _MM_HINT_T1);
    }
    for (int h = 0; h < 2; ++h) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16 * h));
      Bf16WideHalf& o = out[h * half_stride + b];
      _mm256_store_ps(o.odd, _mm256_castsi256_ps(_mm256_and_si256(v, odd_mask)));
      _mm256_store_ps(o.even, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
  }
}

// Continues R rows x T tokens over nb blocks, both halves. Row r's half h,
// block b is w[r * w_stride + h * w_half + b]; token t's a[t * a_stride +
// h * a_half + b]; chain (r, t, h) is acc[(2 t + h) * acc_stride + r].
template <int R, int T>
void BF16WideKernel(const Bf16WideHalf* w, int64_t w_stride, int64_t w_half, const Bf16WideHalf* a,
                    int64_t a_stride, int64_t a_half, int64_t nb, Bf16Partial* acc,
                    int64_t acc_stride) {
  for (int h = 0; h < 2; ++h) {
    __m256 s[R][T];
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) s[r][t] = _mm256_load_ps(acc[(2 * t + h) * acc_stride + r].v);
    }
    const Bf16WideHalf* wh = w + h * w_half;
    const Bf16WideHalf* ah = a + h * a_half;
    for (int64_t b = 0; b < nb; ++b) {
      __m256 wr[R];
      for (int r = 0; r < R; ++r) wr[r] = _mm256_load_ps(wh[r * w_stride + b].odd);
      for (int t = 0; t < T; ++t) {
        const __m256 x = _mm256_load_ps(ah[t * a_stride + b].odd);
        for (int r = 0; r < R; ++r) s[r][t] = _mm256_fmadd_ps(wr[r], x, s[r][t]);
      }
      for (int r = 0; r < R; ++r) wr[r] = _mm256_load_ps(wh[r * w_stride + b].even);
      for (int t = 0; t < T; ++t) {
        const __m256 x = _mm256_load_ps(ah[t * a_stride + b].even);
        for (int r = 0; r < R; ++r) s[r][t] = _mm256_fmadd_ps(wr[r], x, s[r][t]);
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) _mm256_store_ps(acc[(2 * t + h) * acc_stride + r].v, s[r][t]);
    }
  }
}

// One chunk, blocks [b0, b0 + nb): tokens [0, nt) in groups of T (then
// T - 1, ...), each group widened into wide_a ([T][2][kc]) and run over
// rows [0, nr) in groups of R (then of 2, then one at a time). w: [nr][2][kc]
// widened rows; a: the bf16 tokens, a_stride bytes apart; acc: [nt][2][nr].
template <int R, int T>
void BF16WideChunk(const Bf16WideHalf* w, int nr, const uint8_t* a, int64_t a_stride, int nt,
                   int64_t b0, int64_t nb, Bf16WideHalf* wide_a, Bf16Partial* acc) {
  constexpr int64_t kc = kBf16WideChunkBlocks;
  int t = 0;
  for (; t + T <= nt; t += T) {
    for (int i = 0; i < T; ++i) {
      WidenBf16Blocks<false>(Bf16WideRow(a, a_stride, t + i), b0, nb, wide_a + i * 2 * kc, kc);
    }
    Bf16Partial* acc_t = acc + 2 * t * nr;
    int r = 0;
    for (; r + R <= nr; r += R) {
      BF16WideKernel<R, T>(w + r * 2 * kc, 2 * kc, kc, wide_a, 2 * kc, kc, nb, acc_t + r, nr);
    }
    if constexpr (R > 2) {
      for (; r + 2 <= nr; r += 2) {
        BF16WideKernel<2, T>(w + r * 2 * kc, 2 * kc, kc, wide_a, 2 * kc, kc, nb, acc_t + r, nr);
      }
    }
    for (; r < nr; ++r) {
      BF16WideKernel<1, T>(w + r * 2 * kc, 2 * kc, kc, wide_a, 2 * kc, kc, nb, acc_t + r, nr);
    }
  }
  if constexpr (T > 1) {
    if (t < nt) {
      BF16WideChunk<R, T - 1>(w, nr, a + t * a_stride, a_stride, nt - t, b0, nb, wide_a,
                              acc + 2 * t * nr);
    }
  }
}

// The bf16_batch tile. REQUIRES: n % 32 == 0.
void BF16WideBatchTile(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a,
                       int64_t a_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  constexpr int64_t kc = kBf16WideChunkBlocks;
  const int64_t blocks = n / 32;
  // [nr][2][kc]: the chunk of the rows, widened.
  Bf16WideHalf* wide_w = Bf16Scratch<Bf16WideHalf, 0>(static_cast<size_t>(nr) * 2 * kc);
  // [kBf16WideTokens][2][kc]: the chunk of one token group, widened.
  Bf16WideHalf* wide_a = Bf16Scratch<Bf16WideHalf, 1>(size_t{kBf16WideTokens} * 2 * kc);
  // [nt][2][nr]: the chains' partial sums.
  const size_t num_acc = static_cast<size_t>(nt) * 2 * nr;
  Bf16Partial* acc = Bf16Scratch<Bf16Partial, 2>(num_acc);
  std::memset(static_cast<void*>(acc), 0, sizeof(Bf16Partial) * num_acc);
  for (int64_t b0 = 0; b0 < blocks; b0 += kc) {
    const int64_t nb = std::min(kc, blocks - b0);
    for (int r = 0; r < nr; ++r) {
      WidenBf16Blocks<true>(Bf16WideRow(w, w_stride, r), b0, nb, wide_w + r * 2 * kc, kc);
    }
    BF16WideChunk<kBf16WideRows, kBf16WideTokens>(wide_w, nr, a, a_stride, nt, b0, nb, wide_a, acc);
  }
  for (int t = 0; t < nt; ++t) {
    for (int r = 0; r < nr; ++r) {
      const Bf16Partial* p = acc + 2 * t * nr + r;
      y[t * y_stride + r] = V16Sum({_mm256_load_ps(p[0].v), _mm256_load_ps(p[nr].v)});
    }
  }
}

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_SIMD_BF16_BATCH_AVX2_H_
