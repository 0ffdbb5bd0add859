// AVX2 attention kernels (AttentionKernels, AttentionTileKernels). Compiled
// with -mavx2 -mfma -mf16c; reached only through SelectBySimdLevel after a
// CPUID check. Same results as the generic kernels, bit for bit.
#include <immintrin.h>

#include <algorithm>

#include "engine/kernels/quantize.h"
#include "engine/model/attention_decode_impl.h"
#include "engine/model/attention_kernels_internal.h"
#include "engine/model/attention_rope.h"
#include "engine/model/attention_tile_generic.h"

namespace phi3::internal {
namespace {

inline __m256 Load8F16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Tree16 of eight keys at once: v[j] = lanes i + (i + 8) of key j's 16-lane
// sum (the tree's first level); the next levels add the same pairs as
// Tree16 ((i, i+4), then (i, i+2), then (0, 1)), transposed across keys.
inline __m256 Tree16x8(const __m256* v) {
  __m256 s4[4];  // [key 2m: lanes i + (i+4) | key 2m+1: the same]
  for (int m = 0; m < 4; ++m) {
    s4[m] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * m], v[2 * m + 1], 0x20),
                          _mm256_permute2f128_ps(v[2 * m], v[2 * m + 1], 0x31));
  }
  __m256 s2[2];  // [k0 i=0,1, k2 i=0,1 | k1 .., k3 ..] (keys + 4 in s2[1])
  for (int m = 0; m < 2; ++m) {
    const __m256 a = s4[2 * m], b = s4[2 * m + 1];
    s2[m] = _mm256_add_ps(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                          _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // [k0, k2, k4, k6 | k1, k3, k5, k7] -> keys in order.
  const __m256 s = _mm256_add_ps(_mm256_shuffle_ps(s2[0], s2[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm256_shuffle_ps(s2[0], s2[1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm256_permutevar8x32_ps(s, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// ScoresPromptGeneric's order: per key one 16-lane fma chain over head_dim
// (lanes 0-7 and 8-15 in two ymm), then Tree16. Four keys per pass keep 8
// accumulators and the query chunk in the 16 ymm registers.
void ScoresPromptAvx2(const float* q, const float* k_tile, int head_dim, float* scores) {
  __m256 s8[16];
  for (int j0 = 0; j0 < 16; j0 += 4) {
    __m256 lo[4], hi[4];
    for (int j = 0; j < 4; ++j) lo[j] = hi[j] = _mm256_setzero_ps();
    for (int c = 0; c < head_dim; c += 16) {
      const __m256 q0 = _mm256_loadu_ps(q + c), q1 = _mm256_loadu_ps(q + c + 8);
      for (int j = 0; j < 4; ++j) {
        const float* k = k_tile + (j0 + j) * head_dim + c;
        lo[j] = _mm256_fmadd_ps(_mm256_loadu_ps(k), q0, lo[j]);
        hi[j] = _mm256_fmadd_ps(_mm256_loadu_ps(k + 8), q1, hi[j]);
      }
    }
    for (int j = 0; j < 4; ++j) s8[j0 + j] = _mm256_add_ps(lo[j], hi[j]);
  }
  _mm256_storeu_ps(scores, Tree16x8(s8));
  _mm256_storeu_ps(scores + 8, Tree16x8(s8 + 8));
}

float DotF16Avx2(const uint16_t* k, const float* q, int n) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(Load8F16(k + i), _mm256_loadu_ps(q + i), acc0);
    acc1 = _mm256_fmadd_ps(Load8F16(k + i + 8), _mm256_loadu_ps(q + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) {
    acc0 = _mm256_fmadd_ps(Load8F16(k + i), _mm256_loadu_ps(q + i), acc0);
  }
  const __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float sum = _mm_cvtss_f32(s);
  for (; i < n; ++i) sum += F16ToF32(k[i]) * q[i];
  return sum;
}

void AxpyF16Avx2(float a, const uint16_t* v, float* y, int n) {
  const __m256 va = _mm256_set1_ps(a);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, Load8F16(v + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * F16ToF32(v[i]);
}


// Decode scores from the f16 pool: the orders of attention.h with 16-lane
// vectors as (lo, hi) pairs of 8-lane registers.
// tree16 of 8 positions' main parts, each given after its first level
// (lanes i + i+8 = lo + hi), transposed: out[j] = tree16 of position j.
inline __m256 Tree8x8(const __m256* v) {
  __m256 t[4], u[2];
  for (int i = 0; i < 4; ++i) {  // lanes i + i+4
    t[i] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x20),
                         _mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x31));
  }
  for (int i = 0; i < 2; ++i) {  // lanes i + i+2
    u[i] = _mm256_add_ps(_mm256_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm256_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // lanes i + i+1; r = positions 0, 2, 4, 6 | 1, 3, 5, 7
  const __m256 r = _mm256_add_ps(_mm256_shuffle_ps(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm256_shuffle_ps(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm256_permutevar8x32_ps(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// _mm512_reduce_add_pd's order for 8 positions whose 8 double lanes are
// given after the first level (lanes i + i+4), transposed; positions 0-3 in
// *lo, 4-7 in *hi.
inline void TreePd4x8(const __m256d* w, __m256d* lo, __m256d* hi) {
  __m256d x[4];
  for (int i = 0; i < 4; ++i) {  // lanes i + i+2
    x[i] = _mm256_add_pd(_mm256_permute2f128_pd(w[2 * i], w[2 * i + 1], 0x20),
                         _mm256_permute2f128_pd(w[2 * i], w[2 * i + 1], 0x31));
  }
  // lanes i + i+1: hadd gives positions 0, 2, 1, 3 (4, 6, 5, 7).
  *lo = _mm256_permute4x64_pd(_mm256_hadd_pd(x[0], x[1]), _MM_SHUFFLE(3, 1, 2, 0));
  *hi = _mm256_permute4x64_pd(_mm256_hadd_pd(x[2], x[3]), _MM_SHUFFLE(3, 1, 2, 0));
}

template <int NV>
void ScoresDecodeF16Avx2N(const float* q, const uint8_t* base, const int64_t* offsets, int n,
                          float* scores, const uint8_t* const* prefetch, int num_prefetch) {
  constexpr int kMain = NV / 4 * 4;  // 16-element chunks in the main part
  constexpr int kTail = 16 * (NV - kMain);
  constexpr int kRowBytes = 32 * NV;
  double qd[kTail > 0 ? kTail : 1];  // the leftover q values in double
  for (int i = 0; i < kTail; ++i) qd[i] = q[16 * kMain + i];
  const int n16 = (n + 15) & ~15;
  for (int j0 = 0; j0 < n16; j0 += 8) {
    __m256 comb[8];
    __m256d tail[8];
    for (int i = 0; i < 8; ++i) {
      const int j = j0 + i;
      const int64_t off = offsets[j];
      PrefetchRow<kRowBytes>(base + offsets[std::min(j + 16, n16 - 1)]);
      for (int f = 0; f < num_prefetch; ++f) PrefetchRow<kRowBytes>(prefetch[f] + off);
      const uint16_t* k = reinterpret_cast<const uint16_t*>(base + off);
      __m256 a[4][2];
      for (int r = 0; r < 4; ++r) a[r][0] = a[r][1] = _mm256_setzero_ps();
      for (int c = 0; c < kMain; ++c) {
        for (int h = 0; h < 2; ++h) {
          a[c % 4][h] = _mm256_fmadd_ps(Load8F16(k + 16 * c + 8 * h),
                                        _mm256_loadu_ps(q + 16 * c + 8 * h), a[c % 4][h]);
        }
      }
      __m256 fold[2];
      for (int h = 0; h < 2; ++h) {
        fold[h] = _mm256_add_ps(_mm256_add_ps(a[0][h], a[2][h]), _mm256_add_ps(a[1][h], a[3][h]));
      }
      comb[i] = _mm256_add_ps(fold[0], fold[1]);  // tree16's first level
      // Tail lanes 0-3 (4-7): elements 16c + i, then 16c + 8 + i, in double.
      __m256d t_lo = _mm256_setzero_pd(), t_hi = _mm256_setzero_pd();
      for (int e = 0; e < kTail; e += 8) {
        const __m256 k8 = Load8F16(k + 16 * kMain + e);
        t_lo = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(k8)),
                               _mm256_loadu_pd(qd + e), t_lo);
        t_hi = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(k8, 1)),
                               _mm256_loadu_pd(qd + e + 4), t_hi);
      }
      tail[i] = _mm256_add_pd(t_lo, t_hi);  // the reduction's first level
    }
    const __m256 head = Tree8x8(comb);
    __m256d lo, hi;
    TreePd4x8(tail, &lo, &hi);
    // (float)((double)head + tail); with no leftover the tail is +0.0.
    const __m128 s_lo =
        _mm256_cvtpd_ps(_mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(head)), lo));
    const __m128 s_hi =
        _mm256_cvtpd_ps(_mm256_add_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(head, 1)), hi));
    _mm256_storeu_ps(scores + j0, _mm256_set_m128(s_hi, s_lo));
  }
}

struct W256 {
  using F = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kMaxColumnRegs = 3;  // 4 chains x 3 of the 16 ymm
  static F Zero() { return _mm256_setzero_ps(); }
  static F Set1(float x) { return _mm256_set1_ps(x); }
  static F Load(const float* p) { return _mm256_loadu_ps(p); }
  static void StoreU(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F LoadF16(const uint16_t* p) { return Load8F16(p); }
  static F Add(F a, F b) { return _mm256_add_ps(a, b); }
  static F Fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F RoundToF16(F v) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  template <int NV>
  static void ScoresDecodeF16N(const float* q, const uint8_t* base, const int64_t* offsets, int n,
                               float* scores, const uint8_t* const* prefetch, int num_prefetch) {
    ScoresDecodeF16Avx2N<NV>(q, base, offsets, n, scores, prefetch, num_prefetch);
  }
};

}  // namespace

const AttentionKernels& Avx2AttentionKernels() {
  static constexpr AttentionKernels kKernels = {"avx2", DotF16Avx2, AxpyF16Avx2};
  return kKernels;
}

const AttentionTileKernels& Avx2TileKernels() {
  static constexpr AttentionTileKernels kKernels = {
      "avx2",
      ScoresPromptAvx2,
      ScoresDecodeGeneric,
      AccumulatePvGeneric,
      F16ToF32Simd<W256>,
      RoundF16Simd<W256>,
      ScoresDecodeF16Simd<W256>,
      PvDecodeF16Simd<W256>,
      RopeNeoxFused};
  return kKernels;
}

}  // namespace phi3::internal
