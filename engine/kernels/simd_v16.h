// A 16-lane f32 vector for the x86 SIMD kernels that follow llama.cpp's
// AVX-512 lane layout (simd_f16_ops.h, simd_bf16_ops.h): one __m512 with
// AVX-512 (PHI3_WIDE_REGISTERS), two __m256 halves (lanes 0-7, 8-15) with
// AVX2. The lane arithmetic, hence every result, is the same either way.
// Part of the x86 SIMD kernels: included only by per-ISA translation units
// (see dot_simd_impl.h), inside their anonymous namespace.
#ifndef PHI3_ENGINE_KERNELS_SIMD_V16_H_
#define PHI3_ENGINE_KERNELS_SIMD_V16_H_

#include <type_traits>

#include "engine/kernels/simd_common.h"

namespace phi3::internal {
namespace {

#if defined(PHI3_WIDE_REGISTERS)
struct V16 {
  __m512 v;
};
inline V16 V16Zero() { return {_mm512_setzero_ps()}; }
inline V16 V16LoadF16(const uint16_t* p) {
  // maskz forms: GCC 12's plain ones warn about their undefined source.
  return {_mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
inline V16 V16Fma(V16 a, V16 b, V16 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
inline V16 V16Add(V16 a, V16 b) { return {_mm512_add_ps(a.v, b.v)}; }
// Pairwise tree: lane i + lane i+8, then i + i+4, i + i+2, 0 + 1 (the order
// of _mm512_reduce_add_ps, llama.cpp's hsum).
inline float V16Sum(V16 x) {
  return HorizontalSum(_mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xFF, x.v, 0), _mm512_maskz_extractf32x8_ps(0xFF, x.v, 1)));
}
// Lane k = V16Sum(x[k * stride]) bit for bit, k < 16: the same pairwise
// tree for sixteen vectors at once, each level adding the same lane pairs.
// The levels leave input p in lane 4 * (p % 4) + p / 4, a permutation that
// is its own inverse, so x is read in that order to put x[k]'s sum in lane
// k. (maskz shuffles: GCC 12's plain ones warn about their undefined source.)
inline __m512 V16Sums(const V16* x, int stride) {
  auto shuffle128 = [](__m512 a, __m512 b, auto imm) {
    return _mm512_maskz_shuffle_f32x4(0xFFFF, a, b, decltype(imm)::value);
  };
  using Lo256 = std::integral_constant<int, 0x44>;
  using Hi256 = std::integral_constant<int, 0xEE>;
  using Even128 = std::integral_constant<int, 0x88>;
  using Odd128 = std::integral_constant<int, 0xDD>;
  __m512 l1[8];  // lanes 0-7: a[l] + a[l + 8]; lanes 8-15: b's
  for (int i = 0; i < 8; ++i) {
    const int p = 2 * i, q = 2 * i + 1;
    const __m512 a = x[(4 * (p % 4) + p / 4) * stride].v;
    const __m512 b = x[(4 * (q % 4) + q / 4) * stride].v;
    l1[i] = _mm512_add_ps(shuffle128(a, b, Lo256{}), shuffle128(a, b, Hi256{}));
  }
  __m512 l2[4];  // each 128-bit lane: one input's l + (l + 4)
  for (int i = 0; i < 4; ++i) {
    l2[i] = _mm512_add_ps(shuffle128(l1[2 * i], l1[2 * i + 1], Even128{}),
                          shuffle128(l1[2 * i], l1[2 * i + 1], Odd128{}));
  }
  __m512 l3[2];  // each 128-bit lane: l + (l + 2) of two inputs
  for (int i = 0; i < 2; ++i) {
    l3[i] = _mm512_add_ps(_mm512_shuffle_ps(l2[2 * i], l2[2 * i + 1], 0x44),
                          _mm512_shuffle_ps(l2[2 * i], l2[2 * i + 1], 0xEE));
  }
  // Each 128-bit lane: 0 + 1 of four inputs.
  return _mm512_add_ps(_mm512_shuffle_ps(l3[0], l3[1], 0x88),
                       _mm512_shuffle_ps(l3[0], l3[1], 0xDD));
}
#else
struct V16 {
  __m256 lo, hi;
};
inline V16 V16Zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
inline V16 V16LoadF16(const uint16_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
}
inline V16 V16Fma(V16 a, V16 b, V16 c) {
  return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
inline V16 V16Add(V16 a, V16 b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
inline float V16Sum(V16 x) { return HorizontalSum(_mm256_add_ps(x.lo, x.hi)); }
#endif

// Decode reads each weight row once, from DRAM. The hardware prefetchers
// alone leave the F16 kernel well below a plain load loop (it does more work
// per byte, so fewer lines are in flight), and they stop at 4 KiB page
// boundaries; a software prefetch of each row's stream 8 KiB ahead measured
// F16 +10-100% and BF16 +0-15% GB/s on Zen 5 from 4 KiB pages (1-2 threads;
// 2, 4, 6 KiB ahead gained less, prefetcht1 less than prefetcht0). Only the
// first pass over a tile's rows streams them from memory: later token pairs
// find them in L2, and prefetching 3 rows 8 KiB ahead into L1 then only
// evicts the activations (16 tokens measured up to 20% slower with it).
inline constexpr int kDecodePrefetchBytes = 8192;

// The two lines kDecodePrefetchBytes past `p` (one 64-element step of an
// F16 or BF16 row reads 128 bytes). Past the row's end it runs into the next
// rows, which a thread's range holds contiguously; never faults.
// always_inline: GCC drops a call to a function whose only effect is a
// prefetch when it does not inline it (measured: no prefetch emitted).
__attribute__((always_inline)) inline void PrefetchDecodeStep(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p) + kDecodePrefetchBytes, _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(p) + kDecodePrefetchBytes + 64, _MM_HINT_T0);
}

// Decode-order tiling shared by the float kernels (simd_f16_ops.h,
// simd_bf16_ops.h; with AVX-512 they give batches of 3 or more tokens to
// simd_split_tile.h instead): with AVX-512, pairs of tokens take 3
// rows x 2 tokens per call so they share their loads (24 accumulators + 5
// operands of the 32 zmm registers); then one row x one token per call, a
// single sequential weight stream (see TileByKernel in simd_common.h: several
// rows at once are 2-4x slower from DRAM). `Kernel::Run<R, T, kPrefetch>(w,
// w_stride, a, a_stride, n, y, y_stride)` computes an R-rows x T-tokens
// tile, prefetching the rows' streams (PrefetchDecodeStep) if kPrefetch:
// on the first pass over the rows only (kDecodePrefetchBytes says why).
template <typename Kernel, int R, int T>
void RunVecTile(bool stream, const uint8_t* w, int64_t w_stride, const uint8_t* a,
                int64_t a_stride, int64_t n, float* y, int64_t y_stride) {
  if (stream) {
    Kernel::template Run<R, T, true>(w, w_stride, a, a_stride, n, y, y_stride);
  } else {
    Kernel::template Run<R, T, false>(w, w_stride, a, a_stride, n, y, y_stride);
  }
}

template <typename Kernel>
void VecTileInDecodeOrder(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a,
                          int64_t a_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  int t = 0;
#if defined(PHI3_WIDE_REGISTERS)
  for (; t + 2 <= nt; t += 2) {
    int r = 0;
    for (; r + 3 <= nr; r += 3) {
      RunVecTile<Kernel, 3, 2>(t == 0, w + r * w_stride, w_stride, a + t * a_stride, a_stride, n,
                               y + t * y_stride + r, y_stride);
    }
    for (; r < nr; ++r) {
      RunVecTile<Kernel, 1, 2>(t == 0, w + r * w_stride, w_stride, a + t * a_stride, a_stride, n,
                               y + t * y_stride + r, y_stride);
    }
  }
#endif
  for (; t < nt; ++t) {
    for (int r = 0; r < nr; ++r) {
      RunVecTile<Kernel, 1, 1>(t == 0, w + r * w_stride, w_stride, a + t * a_stride, a_stride, n,
                               y + t * y_stride + r, y_stride);
    }
  }
}

// Prompt-order tiling shared by the float kernels: R rows x T tokens per
// call, the remaining < T tokens with T - 1, ..., and the remaining < R rows
// one at a time. `Kernel::Run<R, T>` as above. Every tile shape gives the
// same sums (batch invariance), so this only decides register reuse.
template <typename Kernel, int R, int T>
void BatchTokensInPromptOrder(const uint8_t* w, int64_t w_stride, const uint8_t* a,
                              int64_t a_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  int t = 0;
  for (; t + T <= nt; t += T) {
    Kernel::template Run<R, T>(w, w_stride, a + t * a_stride, a_stride, n, y + t * y_stride,
                               y_stride);
  }
  if constexpr (T > 1) {
    if (t < nt) {
      BatchTokensInPromptOrder<Kernel, R, T - 1>(w, w_stride, a + t * a_stride, a_stride, nt - t,
                                                 n, y + t * y_stride, y_stride);
    }
  }
}

template <typename Kernel, int R, int T>
void BatchTileInPromptOrder(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a,
                            int64_t a_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  int r = 0;
  for (; r + R <= nr; r += R) {
    BatchTokensInPromptOrder<Kernel, R, T>(w + r * w_stride, w_stride, a, a_stride, nt, n, y + r,
                                           y_stride);
  }
  for (; r < nr; ++r) {
    BatchTokensInPromptOrder<Kernel, 1, T>(w + r * w_stride, w_stride, a, a_stride, nt, n, y + r,
                                           y_stride);
  }
}

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_SIMD_V16_H_
