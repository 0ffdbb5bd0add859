// One-output-per-lane kernels (Q4_0, Q4_K) with llama.cpp's repacked numerics.
// Part of the x86 SIMD kernels: included only by dot_simd_impl.h (see there),
// inside the anonymous namespace of each per-ISA translation unit.
#ifndef PHI3_ENGINE_KERNELS_SIMD_LANE_OPS_H_
#define PHI3_ENGINE_KERNELS_SIMD_LANE_OPS_H_

#include "engine/kernels/simd_block_ops.h"

namespace phi3::internal {
namespace {

// ---- one output per lane (llama.cpp's repacked-kernel numerics) ------------
//
// llama.cpp runs Q4_0 and Q4_K through its repacked 8-row kernels on x86
// (ggml-cpu/repack.cpp), which keep one float lane per output and, per
// block b in order, do acc = fma(float(S_b), d_w * d_a, acc) (plus, for
// Q4_K, accm = fma(float(M_b), dmin_w * d_a, accm); result acc - accm),
// where S_b and M_b are the exact integer block sums. Doing the same gives
// our Q4_0/Q4_K outputs the same rounding as llama.cpp's. Eight rows' int32
// partial sums are reduced into one vector (lane k = row k); a lone output
// (dot(), rows left over) runs the identical arithmetic in scalar.

inline __m256i ReduceRows8(const __m256i v[8]) {
  const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]);
  const __m256i h23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]);
  const __m256i h67 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i q03 = _mm256_hadd_epi32(h01, h23);  // [rows 0..3 low | rows 0..3 high]
  const __m256i q47 = _mm256_hadd_epi32(h45, h67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(q03, q47, 0x20),
                          _mm256_permute2x128_si256(q03, q47, 0x31));
}

struct LaneQ4_0 {
  static constexpr bool kHasMin = false;
  static constexpr int kSteps = 1;
  using WBlock = Q4_0Ops::WBlock;
  static int64_t NumBlocks(int64_t n) { return n / 32; }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) { Q4_0Ops::LoadW(w, b, out); }
  static float ScaleA(const uint8_t* a, int64_t b) {
    return HalfToFloat((reinterpret_cast<const BlockQ8_0*>(a) + b)->d);
  }
  static float MinScaleW(const WBlock&) { return 0.0f; }
  static void IntDot(const WBlock& wb, const uint8_t* a, int64_t b, int, __m256i* s, __m256i*) {
    const __m256i aq = Load256((reinterpret_cast<const BlockQ8_0*>(a) + b)->qs);
    *s = _mm256_sub_epi32(DotU8S8(_mm256_setzero_si256(), wb.q, aq),
                          DotU8S8(_mm256_setzero_si256(), _mm256_set1_epi8(8), aq));
  }
};

// kPairs: one fma per pair of sub-blocks (64 elements, 4 per super-block)
// instead of one per super-block. llama.cpp's Q4_K gemm (4+ tokens of a
// batch) rounds that way; its gemv (the rest, and decode) per super-block.
template <bool kFiveBit, bool kPairs = false>
struct LaneK45 {
  static constexpr bool kHasMin = true;
  static constexpr int kSteps = kPairs ? 4 : 1;
  using WBlock = typename K45Ops<kFiveBit>::WBlock;
  static int64_t NumBlocks(int64_t n) { return n / kQK_K; }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) {
    K45Ops<kFiveBit>::LoadW(w, b, out);
  }
  static float ScaleA(const uint8_t* a, int64_t b) {
    return (reinterpret_cast<const BlockQ8_K*>(a) + b)->d;
  }
  static float MinScaleW(const WBlock& wb) { return wb.dmin; }
  static void IntDot(const WBlock& wb, const uint8_t* a, int64_t b, int step, __m256i* s,
                     __m256i* m) {
    const BlockQ8_K* ab = reinterpret_cast<const BlockQ8_K*>(a) + b;
    if constexpr (!kPairs) {
      K45Ops<kFiveBit>::IntDot(wb, ab, s, m);
    } else {
      // Sub-blocks 2*step and 2*step+1; the min term keeps lanes 2*step and
      // 2*step+1 of m_j * (bsum pair j) (exact int32 either way).
      __m256i sumi = _mm256_setzero_si256();
      for (int j = 2 * step; j < 2 * step + 2; ++j) {
        const __m256i p16 = _mm256_maddubs_epi16(wb.q[j], Load256(ab->qs + 32 * j));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p16, wb.sc16[j]));
      }
      *s = sumi;
      const __m256i lane = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
      const __m256i keep = _mm256_cmpeq_epi32(lane, _mm256_set1_epi32(step));
      *m = _mm256_and_si256(_mm256_madd_epi16(Load256(ab->bsums), wb.mins16), keep);
    }
  }
};

template <typename L>
float LaneDot(const void* w, const void* a, int64_t n) {
  const uint8_t* wp = static_cast<const uint8_t*>(w);
  const uint8_t* ap = static_cast<const uint8_t*>(a);
  float acc = 0.0f, accm = 0.0f;
  for (int64_t b = 0; b < L::NumBlocks(n); ++b) {
    typename L::WBlock wb;
    L::LoadW(wp, b, &wb);
    const float da = L::ScaleA(ap, b);
    for (int step = 0; step < L::kSteps; ++step) {
      __m256i s, m = _mm256_setzero_si256();
      L::IntDot(wb, ap, b, step, &s, &m);
      acc = std::fma(static_cast<float>(HorizontalSumI32(s)), wb.d * da, acc);
      if constexpr (L::kHasMin) {
        accm = std::fma(static_cast<float>(HorizontalSumI32(m)), L::MinScaleW(wb) * da, accm);
      }
    }
  }
  return L::kHasMin ? acc - accm : acc;
}

// 8 rows x T tokens.
template <typename L, int T>
void LaneKernel8(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride,
                 int64_t n, float* y, int64_t y_stride) {
  __m256 acc[T], accm[T];
  for (int t = 0; t < T; ++t) acc[t] = accm[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < L::NumBlocks(n); ++b) {
    typename L::WBlock wb[8];
    alignas(32) float dw[8], dmw[8];
    for (int r = 0; r < 8; ++r) {
      L::LoadW(w + r * w_stride, b, &wb[r]);
      dw[r] = wb[r].d;
      dmw[r] = L::MinScaleW(wb[r]);
    }
    const __m256 dwv = _mm256_load_ps(dw), dmwv = _mm256_load_ps(dmw);
    for (int t = 0; t < T; ++t) {
      const uint8_t* at = a + t * a_stride;
      const __m256 da = _mm256_set1_ps(L::ScaleA(at, b));
      for (int step = 0; step < L::kSteps; ++step) {
        __m256i s[8], m[8];
        for (int r = 0; r < 8; ++r) {
          m[r] = _mm256_setzero_si256();
          L::IntDot(wb[r], at, b, step, &s[r], &m[r]);
        }
        acc[t] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(ReduceRows8(s)), _mm256_mul_ps(dwv, da), acc[t]);
        if constexpr (L::kHasMin) {
          accm[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ReduceRows8(m)), _mm256_mul_ps(dmwv, da),
                                    accm[t]);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    alignas(32) float out[8];
    _mm256_store_ps(out, L::kHasMin ? _mm256_sub_ps(acc[t], accm[t]) : acc[t]);
    std::memcpy(y + t * y_stride, out, sizeof(out));
  }
}

template <typename L>
void LaneTile(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a, int64_t a_stride,
              int nt, int64_t n, float* y, int64_t y_stride) {
  constexpr int T = kTileTokens;
  int r = 0;
  for (; r + 8 <= nr; r += 8) {
    int t = 0;
    for (; t + T <= nt; t += T) {
      LaneKernel8<L, T>(w + r * w_stride, w_stride, a + t * a_stride, a_stride, n,
                        y + t * y_stride + r, y_stride);
    }
    for (; t < nt; ++t) {
      LaneKernel8<L, 1>(w + r * w_stride, w_stride, a + t * a_stride, a_stride, n,
                        y + t * y_stride + r, y_stride);
    }
  }
  for (; r < nr; ++r) {
    for (int t = 0; t < nt; ++t) {
      y[t * y_stride + r] = LaneDot<L>(w + r * w_stride, a + t * a_stride, n);
    }
  }
}

template <typename L>
constexpr TypeKernels MakeLaneKernels() {
  return TypeKernels{&LaneDot<L>, &LaneTile<L>};
}

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_SIMD_LANE_OPS_H_
