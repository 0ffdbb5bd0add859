// F16 weights x F16 activations with llama.cpp's two x86 roundings (its
// AVX-512 "zen4" build, the one the oracle runs). Part of the x86 SIMD
// kernels: included only by dot_simd_impl.h (see there), inside the
// anonymous namespace of each per-ISA translation unit.
//
// - Decode (ggml_vec_dot_f16, one token or a batch tinyBLAS refuses): four
//   16-lane f32 accumulators, each fed by one fma per 64-element step
//   (elements 64i + 16j + lane go to accumulator j); then acc0 += acc2,
//   acc1 += acc3, acc0 += acc1, a pairwise tree sum of the 16 lanes
//   (lane i + lane i+8, then i + i+4, i + i+2, 0 + 1), widened to double;
//   the n % 64 tail elements are added in double, each product rounded to
//   f32 first (exact for f16 inputs); the double is rounded to f32 once.
// - Prompt batch (llamafile's tinyBLAS<16, __m512>, ggml_mul_mat with
//   ne11 >= 2 when rows % 4 == 0 and cols % 16 == 0): one 16-lane
//   accumulator per output, one fma per 16 elements, the same 16-lane tree
//   sum. Needs n % 16 == 0; other n get the decode order (as in ggml,
//   whose tinyBLAS then declines).
// 16-lane vectors: simd_v16.h. Batched decode with AVX-512 runs the same
// decode order one split at a time (simd_split_tile.h).
#ifndef PHI3_ENGINE_KERNELS_SIMD_F16_OPS_H_
#define PHI3_ENGINE_KERNELS_SIMD_F16_OPS_H_

#include "engine/kernels/simd_common.h"
#include "engine/kernels/simd_split_tile.h"
#include "engine/kernels/simd_v16.h"

namespace phi3::internal {
namespace {

#if defined(PHI3_WIDE_REGISTERS)
inline constexpr int kF16BatchRows = 4, kF16BatchTokens = 4;  // 16 + 5 zmm
#else
inline constexpr int kF16BatchRows = 2, kF16BatchTokens = 2;  // 8 + 6 ymm
#endif

// ---- decode order (ggml_vec_dot_f16) -----------------------------------------

// The result from the four accumulators of elements [0, n & ~63) and the
// n % 64 tail of rows w and a.
inline float F16FinishDecode(const V16* acc, const uint8_t* w, const uint8_t* a, int64_t n) {
  const V16 s = V16Add(V16Add(acc[0], acc[2]), V16Add(acc[1], acc[3]));
  double sum = V16Sum(s);
  const uint16_t* wr = reinterpret_cast<const uint16_t*>(w);
  const uint16_t* ar = reinterpret_cast<const uint16_t*>(a);
  for (int64_t i = n & ~int64_t{63}; i < n; ++i) {
    sum += static_cast<double>(HalfToFloat(wr[i]) * HalfToFloat(ar[i]));
  }
  return static_cast<float>(sum);
}

// R rows x T activation rows: 4 * R * T accumulators; the rows' streams
// prefetched if kPrefetch (simd_v16.h).
template <int R, int T, bool kPrefetch>
void F16VecKernel(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride,
                  int64_t n, float* y, int64_t y_stride) {
  V16 acc[R][T][4];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      for (int j = 0; j < 4; ++j) acc[r][t][j] = V16Zero();
    }
  }
  const int64_t np = n & ~int64_t{63};
  for (int64_t i = 0; i < np; i += 64) {
    if constexpr (kPrefetch) {
      for (int r = 0; r < R; ++r) PrefetchDecodeStep(w + r * w_stride + 2 * i);
    }
    for (int j = 0; j < 4; ++j) {
      V16 wv[R], av[T];
      for (int r = 0; r < R; ++r) {
        wv[r] = V16LoadF16(reinterpret_cast<const uint16_t*>(w + r * w_stride) + i + 16 * j);
      }
      for (int t = 0; t < T; ++t) {
        av[t] = V16LoadF16(reinterpret_cast<const uint16_t*>(a + t * a_stride) + i + 16 * j);
      }
      for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) acc[r][t][j] = V16Fma(wv[r], av[t], acc[r][t][j]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      y[t * y_stride + r] = F16FinishDecode(acc[r][t], w + r * w_stride, a + t * a_stride, n);
    }
  }
}

float F16VecDot(const void* w, const void* a, int64_t n) {
  float y;
  F16VecKernel<1, 1, false>(static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a),
                             0, n, &y, 1);
  return y;
}

struct F16VecTileKernel {
  template <int R, int T, bool kPrefetch>
  static void Run(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride,
                  int64_t n, float* y, int64_t y_stride) {
    F16VecKernel<R, T, kPrefetch>(w, w_stride, a, a_stride, n, y, y_stride);
  }
};

#if defined(PHI3_WIDE_REGISTERS)
struct F16Split {
  static constexpr int kSplits = 4, kWidth = 16;
  // BF16Split's 8 rows measured inconclusive here (kernels_bench f16
  // 32064x3072, 16 tokens, 2 threads: 275 / 234 vs 205 / 250 GFLOP/s), and
  // four splits double the group's scratch: kept at 4 rows. BF16Split's
  // shape, 8 or 16 rows over 512-element chunks, measured slower (same
  // harness, 15 alternating runs, medians: 1 thread 95 / 94 vs 107 GFLOP/s,
  // 2 threads 188 / 182 vs 207), likely because a pass then has half the
  // steps for the same accumulator reloads and stores.
  static constexpr int kGroupRows = 4;
  // 1024 measured faster than 512 (8 tokens, 2 threads: 270-279 vs 204-229
  // GFLOP/s), 256, 1536 and 2048.
  static constexpr int64_t kChunk = 1024;
  // 24 accumulators + 4 weight + 1 activation zmm registers. Zen 5,
  // kernels_bench f16 128x3072 (L2), 16 tokens, 1 thread, best of 6
  // alternating runs: 166 GFLOP/s vs 152 with 4 tokens (from DRAM equal).
  // Fewer rows per tile convert fewer weight vectors per fma but more
  // activation vectors: an L1-resident loop of this shape ran 5.3-6.3 G
  // zmm fmas/s, 3 x 8 5.2-6.0, 2 x 12 4.4-5.0 (operands in registers
  // 6.6-6.9). Activations widened to f32 once per call, read by plain
  // loads, measured slower at every shape and chunk tried (best, 4 x 6 over
  // 512: 92 vs 129 GFLOP/s on 1 thread, 158 vs 243 on 2, kernels_bench
  // 32064x3072, 9 alternating runs, medians): a 16-row call writes as many
  // activation bytes as it reads weight bytes. Widened once per MatMul
  // instead (4 conversions per 24 fmas) also measured slower: 4 x 512 110 /
  // 207 vs 133 / 227 GFLOP/s (1 / 2 threads, 6 alternating runs, medians;
  // 8 x 512, 16 x 512, 4 x 1024 likewise): f32 doubles the activation bytes
  // each group pulls from L2, and larger groups' accumulator scratch (16
  // rows: 64 KB) outgrows L1.
  static constexpr int kTileTokens = 6;
  // One chunk ahead: kernels_bench f16 32064x3072, 16 tokens, 1 thread,
  // 4 alternating runs, 153-157 vs 148-152 GFLOP/s two chunks ahead. On 1
  // and 2 threads (AMD EPYC Zen 5, 7-15 alternating runs, medians) none of
  // these measured faster: two or three chunks ahead, an added L2 burst of
  // the chunk 2-5 ahead, prefetching the activations, the NTA hint.
  static constexpr int kPrefetchAhead = 1;
  // Spread, unlike BF16: the row-wise form measured slower here (Zen 5,
  // kernels_bench f16 32064x3072, 16 tokens, 5 alternating runs, medians:
  // 1 thread 129 vs 140 GFLOP/s, 2 threads 222 vs 231).
  static constexpr bool kPrefetchByRow = false;
  using Operand = V16;
  static Operand Load(const uint8_t* row, int64_t i) {
    return V16LoadF16(reinterpret_cast<const uint16_t*>(row) + i);
  }
  static V16 Step(V16 acc, V16 w, V16 a) { return V16Fma(w, a, acc); }
  static float Finish(const V16* acc, const uint8_t* w, const uint8_t* a, int64_t n) {
    return F16FinishDecode(acc, w, a, n);
  }
  // out[k] = Finish(part + 4 * k, ...) for k < 16 when n % 64 == 0 (a
  // float widened to double and back is itself).
  static void FinishSixteen(const V16* part, float* out) {
    V16 s[16];
    for (int k = 0; k < 16; ++k) {
      const V16* acc = part + 4 * k;
      s[k] = V16Add(V16Add(acc[0], acc[2]), V16Add(acc[1], acc[3]));
    }
    _mm512_storeu_ps(out, V16Sums(s, 1));
  }
};
#endif

void F16VecTile(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a, int64_t a_stride,
                int nt, int64_t n, float* y, int64_t y_stride) {
#if defined(PHI3_WIDE_REGISTERS)
  if (nt >= kSplitMinTokens) {
    SplitTileInDecodeOrder<F16Split>(w, w_stride, nr, a, a_stride, nt, n, y, y_stride);
    return;
  }
#endif
  VecTileInDecodeOrder<F16VecTileKernel>(w, w_stride, nr, a, a_stride, nt, n, y, y_stride);
}

// ---- prompt-batch order (tinyBLAS) -------------------------------------------

template <int R, int T>
void F16BatchKernel(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride,
                    int64_t n, float* y, int64_t y_stride) {
  V16 acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = V16Zero();
  }
  for (int64_t l = 0; l < n; l += 16) {
    V16 wv[R];
    for (int r = 0; r < R; ++r) {
      wv[r] = V16LoadF16(reinterpret_cast<const uint16_t*>(w + r * w_stride) + l);
    }
    for (int t = 0; t < T; ++t) {
      const V16 av = V16LoadF16(reinterpret_cast<const uint16_t*>(a + t * a_stride) + l);
      for (int r = 0; r < R; ++r) acc[r][t] = V16Fma(wv[r], av, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) y[t * y_stride + r] = V16Sum(acc[r][t]);
  }
}

float F16BatchDot(const void* w, const void* a, int64_t n) {
  if (n % 16 != 0) return F16VecDot(w, a, n);
  float y;
  F16BatchKernel<1, 1>(static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, n,
                       &y, 1);
  return y;
}

struct F16BatchTileKernel {
  template <int R, int T>
  static void Run(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride,
                  int64_t n, float* y, int64_t y_stride) {
    F16BatchKernel<R, T>(w, w_stride, a, a_stride, n, y, y_stride);
  }
};

void F16BatchTile(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a,
                  int64_t a_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  if (n % 16 != 0) {
    F16VecTile(w, w_stride, nr, a, a_stride, nt, n, y, y_stride);
    return;
  }
  constexpr int R = kF16BatchRows, T = kF16BatchTokens;
  BatchTileInPromptOrder<F16BatchTileKernel, R, T>(w, w_stride, nr, a, a_stride, nt, n, y,
                                        y_stride);
}

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_SIMD_F16_OPS_H_
