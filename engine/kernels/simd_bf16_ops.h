// BF16 weights x BF16 activations with llama.cpp's two x86 roundings (its
// AVX-512 "zen4" build, compiled with AVX512_BF16). Part of the x86 SIMD
// kernels: included by dot_simd_impl.h (see there) and dot_avx512bf16.cc,
// inside the anonymous namespace of each per-ISA translation unit.
//
// The unit is one VDPBF16PS step over 32 elements: f32 lane j (of 16) takes
// the pair (2j, 2j+1) as acc_j = fma(x[2j+1], y[2j+1], acc_j), then
// acc_j = fma(x[2j], y[2j], acc_j) (Intel SDM; a bf16 product is exact in
// f32, so each half is one f32 fma; dot_test pins the instruction to this).
// - Decode (ggml_vec_dot_bf16, one token or a batch tinyBLAS refuses): two
//   accumulators, each fed one step per 64-element block (elements [0, 32)
//   of the block go to acc0, [32, 64) to acc1); then
//   double(tree sum(acc0)) + double(tree sum(acc1)), the n % 64 tail added
//   in double, each product rounded to f32 first (exact); the double is
//   rounded to f32 once. Tree sum: lane i + i+8, i + i+4, i + i+2, 0 + 1.
// - Prompt batch (llamafile's tinyBLAS<32, __m512, __m512bh>, ggml_mul_mat
//   with ne11 >= 2 when rows % 4 == 0 and cols % 32 == 0): one accumulator
//   per output, one step per 32 elements, the same tree sum. Needs
//   n % 32 == 0; other n get the decode order (ggml's tinyBLAS declines).
// The step is the instruction itself where the translation unit is built
// for it (PHI3_AVX512BF16: dot_avx512bf16.cc), else two fmas on the odd and
// even elements widened to f32: any AVX-512 or AVX2 CPU, identical results.
// AVX2's prompt-batch tile widens into scratch first and lives in
// simd_bf16_batch_avx2.h.
// (The instruction also treats subnormal inputs and results as zero; the
// fmas keep them. Such values, |x| < 2^-126, never occur in a model's
// weights or activations; dot_test shows where the two part.)
// Batched decode with AVX-512 runs the decode order one split at a time
// (simd_split_tile.h).
#ifndef PHI3_ENGINE_KERNELS_SIMD_BF16_OPS_H_
#define PHI3_ENGINE_KERNELS_SIMD_BF16_OPS_H_

#include "engine/kernels/simd_common.h"
#include "engine/kernels/simd_split_tile.h"
#include "engine/kernels/simd_v16.h"
#if !defined(PHI3_AVX512BF16) && !defined(PHI3_WIDE_REGISTERS)
#include "engine/kernels/simd_bf16_batch_avx2.h"
#endif

namespace phi3::internal {
namespace {

#if defined(PHI3_AVX512BF16)
// 32 bf16 elements as they are in memory.
struct Bf16Block {
  __m512i v;
};
inline Bf16Block LoadBf16Block(const uint16_t* p) { return {_mm512_loadu_si512(p)}; }
inline V16 Bf16Step(V16 acc, const Bf16Block& x, const Bf16Block& y) {
  return {_mm512_dpbf16_ps(acc.v, (__m512bh)x.v, (__m512bh)y.v)};
}
// 24 accumulators + 4 weight + 1 activation zmm registers.
inline constexpr int kBf16BatchRows = 4, kBf16BatchTokens = 6;
#else
// 32 bf16 elements widened to f32: lane j of `odd` holds element 2j + 1 (the
// high half of 32-bit lane j), lane j of `even` element 2j.
struct Bf16Block {
  V16 odd, even;
};
#if defined(PHI3_WIDE_REGISTERS)
inline Bf16Block LoadBf16Block(const uint16_t* p) {
  const __m512i v = _mm512_loadu_si512(p);
  return {{_mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(int(0xFFFF0000))))},
          // maskz form: GCC 12's plain one warns about its undefined source.
          {_mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, v, 16))}};
}
// 16 accumulators + 8 weight + 2 activation zmm registers.
inline constexpr int kBf16BatchRows = 4, kBf16BatchTokens = 4;
#else
inline Bf16Block LoadBf16Block(const uint16_t* p) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16));
  const __m256i odd = _mm256_set1_epi32(int(0xFFFF0000));
  return {{_mm256_castsi256_ps(_mm256_and_si256(lo, odd)), _mm256_castsi256_ps(_mm256_and_si256(hi, odd))},
          {_mm256_castsi256_ps(_mm256_slli_epi32(lo, 16)), _mm256_castsi256_ps(_mm256_slli_epi32(hi, 16))}};
}
#endif
inline V16 Bf16Step(V16 acc, const Bf16Block& x, const Bf16Block& y) {
  return V16Fma(x.even, y.even, V16Fma(x.odd, y.odd, acc));
}
#endif

inline const uint16_t* Bf16Row(const uint8_t* base, int64_t stride, int i) {
  return reinterpret_cast<const uint16_t*>(base + i * stride);
}

// ---- decode order (ggml_vec_dot_bf16) ------------------------------------------

// The result from the two accumulators of elements [0, n & ~63) and the
// n % 64 tail of rows w and a.
inline float BF16FinishDecode(const V16* acc, const uint16_t* w, const uint16_t* a, int64_t n) {
  double sum = V16Sum(acc[0]);
  sum += V16Sum(acc[1]);
  for (int64_t i = n & ~int64_t{63}; i < n; ++i) {
    sum += static_cast<double>(BF16ToF32(w[i]) * BF16ToF32(a[i]));
  }
  return static_cast<float>(sum);
}

// R rows x T activation rows: 2 * R * T accumulators; the rows' streams
// prefetched if kPrefetch (simd_v16.h).
template <int R, int T, bool kPrefetch>
void BF16VecKernel(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride,
                   int64_t n, float* y, int64_t y_stride) {
  V16 acc[R][T][2];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t][0] = acc[r][t][1] = V16Zero();
  }
  const int64_t np = n & ~int64_t{63};
  for (int64_t i = 0; i < np; i += 64) {
    if constexpr (kPrefetch) {
      for (int r = 0; r < R; ++r) PrefetchDecodeStep(w + r * w_stride + 2 * i);
    }
    for (int j = 0; j < 2; ++j) {
      Bf16Block wb[R];
      for (int r = 0; r < R; ++r) wb[r] = LoadBf16Block(Bf16Row(w, w_stride, r) + i + 32 * j);
      for (int t = 0; t < T; ++t) {
        const Bf16Block ab = LoadBf16Block(Bf16Row(a, a_stride, t) + i + 32 * j);
        for (int r = 0; r < R; ++r) acc[r][t][j] = Bf16Step(acc[r][t][j], wb[r], ab);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      y[t * y_stride + r] =
          BF16FinishDecode(acc[r][t], Bf16Row(w, w_stride, r), Bf16Row(a, a_stride, t), n);
    }
  }
}

float BF16VecDot(const void* w, const void* a, int64_t n) {
  float y;
  BF16VecKernel<1, 1, false>(static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a),
                              0, n, &y, 1);
  return y;
}

struct BF16VecTileKernel {
  template <int R, int T, bool kPrefetch>
  static void Run(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride,
                  int64_t n, float* y, int64_t y_stride) {
    BF16VecKernel<R, T, kPrefetch>(w, w_stride, a, a_stride, n, y, y_stride);
  }
};

#if defined(PHI3_WIDE_REGISTERS)
struct BF16Split {
  static constexpr int kSplits = 2, kWidth = 32;
  // 16 rows of 512-element chunks: the group's chunk is as large as 8 rows
  // of 1024 (16 KB), and each token tile of activations, read from L2,
  // serves four row tiles instead of two. AMD EPYC Zen 5, kernels_bench
  // bf16 32064x3072, 16 tokens, three rounds of 5-6 alternating runs,
  // medians: 1 thread 146 / 156 / 137 -> 177 / 158 / 157 GFLOP/s, 2 threads
  // 280 / 278 / 282 -> 319 / 312 / 287 (this VM's binaries differ by up to
  // ~8% in identical F16 code, so read the 2-thread gain as a few percent);
  // 24 rows of 512 and 32 of 256 measured slower. 8 rows had measured
  // faster than 4 (364 / 320 vs 282 / 294, 2 threads).
  static constexpr int kGroupRows = 16;
  static constexpr int64_t kChunk = 512;
  // The prompt-batch tile's register budget: 4 x 6 on vdpbf16ps, 4 x 4
  // widened. Zen 5, kernels_bench bf16 128x3072 (L2), 16 tokens, 1 thread,
  // best of 6 alternating runs: 237 GFLOP/s vs 221 with 4 tokens.
  static constexpr int kTileTokens = kBf16BatchTokens;
  // One chunk ahead, row by row: with the row-wise form the spread's
  // cursor no longer takes registers from the loads (Zen 5, same harness:
  // 221 vs 208 GFLOP/s spread, both 4 tokens; from DRAM, 32064x3072, 6
  // alternating runs, medians: 2 threads 320 GFLOP/s one chunk ahead vs
  // 318 two, 273 / 282 with the L2 hint two / four ahead).
  static constexpr int kPrefetchAhead = 1;
  static constexpr bool kPrefetchByRow = true;
  using Operand = Bf16Block;
  static Operand Load(const uint8_t* row, int64_t i) {
    return LoadBf16Block(reinterpret_cast<const uint16_t*>(row) + i);
  }
  static V16 Step(V16 acc, const Bf16Block& w, const Bf16Block& a) { return Bf16Step(acc, w, a); }
  static float Finish(const V16* acc, const uint8_t* w, const uint8_t* a, int64_t n) {
    return BF16FinishDecode(acc, reinterpret_cast<const uint16_t*>(w),
                            reinterpret_cast<const uint16_t*>(a), n);
  }
  // out[k] = Finish(part + 2 * k, ...) for k < 16 when n % 64 == 0: the
  // same float sums, widened and added in double, rounded once.
  static void FinishSixteen(const V16* part, float* out) {
    const __m512 s0 = V16Sums(part, 2), s1 = V16Sums(part + 1, 2);
    // maskz forms: GCC 12's plain ones warn about their undefined source.
    auto widen = [](__m512 s, int half) {
      return _mm512_maskz_cvtps_pd(0xFF, half == 0 ? _mm512_maskz_extractf32x8_ps(0xFF, s, 0)
                                                   : _mm512_maskz_extractf32x8_ps(0xFF, s, 1));
    };
    const __m256 lo = _mm512_maskz_cvtpd_ps(0xFF, _mm512_add_pd(widen(s0, 0), widen(s1, 0)));
    const __m256 hi = _mm512_maskz_cvtpd_ps(0xFF, _mm512_add_pd(widen(s0, 1), widen(s1, 1)));
    _mm256_storeu_ps(out, lo);
    _mm256_storeu_ps(out + 8, hi);
  }
};
#endif

void BF16VecTile(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a, int64_t a_stride,
                 int nt, int64_t n, float* y, int64_t y_stride) {
#if defined(PHI3_WIDE_REGISTERS)
  if (nt >= kSplitMinTokens) {
    SplitTileInDecodeOrder<BF16Split>(w, w_stride, nr, a, a_stride, nt, n, y, y_stride);
    return;
  }
#endif
  VecTileInDecodeOrder<BF16VecTileKernel>(w, w_stride, nr, a, a_stride, nt, n, y, y_stride);
}

// ---- prompt-batch order (tinyBLAS) ---------------------------------------------

template <int R, int T>
void BF16BatchKernel(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride,
                     int64_t n, float* y, int64_t y_stride) {
  V16 acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = V16Zero();
  }
  for (int64_t l = 0; l < n; l += 32) {
    Bf16Block wb[R];
    for (int r = 0; r < R; ++r) wb[r] = LoadBf16Block(Bf16Row(w, w_stride, r) + l);
    for (int t = 0; t < T; ++t) {
      const Bf16Block ab = LoadBf16Block(Bf16Row(a, a_stride, t) + l);
      for (int r = 0; r < R; ++r) acc[r][t] = Bf16Step(acc[r][t], wb[r], ab);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) y[t * y_stride + r] = V16Sum(acc[r][t]);
  }
}

float BF16BatchDot(const void* w, const void* a, int64_t n) {
  if (n % 32 != 0) return BF16VecDot(w, a, n);
  float y;
  BF16BatchKernel<1, 1>(static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, n,
                        &y, 1);
  return y;
}

struct BF16BatchTileKernel {
  template <int R, int T>
  static void Run(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride,
                  int64_t n, float* y, int64_t y_stride) {
    BF16BatchKernel<R, T>(w, w_stride, a, a_stride, n, y, y_stride);
  }
};

void BF16BatchTile(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a,
                   int64_t a_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  if (n % 32 != 0) {
    BF16VecTile(w, w_stride, nr, a, a_stride, nt, n, y, y_stride);
    return;
  }
#if !defined(PHI3_AVX512BF16) && !defined(PHI3_WIDE_REGISTERS)
  BF16WideBatchTile(w, w_stride, nr, a, a_stride, nt, n, y, y_stride);
#else
  constexpr int R = kBf16BatchRows, T = kBf16BatchTokens;
  BatchTileInPromptOrder<BF16BatchTileKernel, R, T>(w, w_stride, nr, a, a_stride, nt, n, y,
                                                    y_stride);
#endif
}

// The table entries of this file.
inline void SetBf16Kernels(KernelTable* t) {
  t->bf16 = TypeKernels{&BF16VecDot, &BF16VecTile};
  t->bf16_batch = TypeKernels{&BF16BatchDot, &BF16BatchTile};
}

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_SIMD_BF16_OPS_H_
