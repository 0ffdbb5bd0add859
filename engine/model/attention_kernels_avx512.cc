// AVX-512F tile kernels (AttentionTileKernels). Compiled with -mavx512f
// -mavx512dq -mfma; reached only through SelectBySimdLevel after a CPUID
// check. Same results as the generic kernels, bit for bit: the lane orders
// are those of attention.h.
#include <immintrin.h>

#include <algorithm>

#include "engine/model/attention_decode_impl.h"
#include "engine/model/attention_kernels_internal.h"
#include "engine/model/attention_rope.h"

namespace phi3::internal {
namespace {

// Transposed tree16 (attention.h): Tree16x16(v)[j] = tree16(v[j]) for 16
// vectors, pairing the same lanes as tree16 at every level. Level 1 adds
// lanes 8 apart of two vectors, level 2 lanes 4 apart of two level-1
// results, and so on; TreeTop16 finishes 4 level-2 results.
inline __m512 TreeLevel1(__m512 a, __m512 b) {  // [a: 8 sums | b: 8 sums]
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
}

inline __m512 TreeLevel2(__m512 t0, __m512 t1) {  // 4 sums of each of 4 vectors, by 128-bit block
  return _mm512_add_ps(_mm512_shuffle_f32x4(t0, t1, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(t0, t1, _MM_SHUFFLE(3, 1, 3, 1)));
}

inline __m512 TreeTop16(const __m512* u) {
  __m512 w[2];
  for (int i = 0; i < 2; ++i) {  // + lanes 2 apart
    w[i] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // + neighbouring lanes: lane 4k + m of r holds v[k + 4m].
  const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_ps(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(idx, r);
}

inline __m512 Tree16x16(const __m512* v) {
  __m512 u[4];
  for (int i = 0; i < 4; ++i) {
    u[i] = TreeLevel2(TreeLevel1(v[4 * i], v[4 * i + 1]), TreeLevel1(v[4 * i + 2], v[4 * i + 3]));
  }
  return TreeTop16(u);
}

// The same for _mm512_reduce_add_pd's order (lanes i + i+4, then i + i+2,
// then i + i+1) over 16 vectors of 8 doubles: out[j] for j < 8 in lo, j >= 8
// in hi.
inline __m512d TreeLevel1Pd(__m512d a, __m512d b) {  // [a: 4 sums | b: 4 sums]
  return _mm512_add_pd(_mm512_shuffle_f64x2(a, b, 0x44), _mm512_shuffle_f64x2(a, b, 0xEE));
}

inline __m512d TreeLevel2Pd(__m512d t0, __m512d t1) {  // 2 sums of 4 vectors, by 128-bit block
  return _mm512_add_pd(_mm512_shuffle_f64x2(t0, t1, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f64x2(t0, t1, _MM_SHUFFLE(3, 1, 3, 1)));
}

inline void TreeTop8x16Pd(const __m512d* u, __m512d* lo, __m512d* hi) {
  // Block k of u[i] holds vector 4i + k's two sums; lane 2k (2k + 1) of w
  // holds vector 8 * half + k (+ 4).
  const __m512i idx = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
  const __m512d w0 = _mm512_add_pd(_mm512_unpacklo_pd(u[0], u[1]), _mm512_unpackhi_pd(u[0], u[1]));
  const __m512d w1 = _mm512_add_pd(_mm512_unpacklo_pd(u[2], u[3]), _mm512_unpackhi_pd(u[2], u[3]));
  *lo = _mm512_permutexvar_pd(idx, w0);
  *hi = _mm512_permutexvar_pd(idx, w1);
}

void ScoresPromptAvx512(const float* q, const float* k_tile, int head_dim, float* scores) {
  __m512 acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
  for (int c = 0; c < head_dim; c += 16) {
    const __m512 qc = _mm512_loadu_ps(q + c);
    for (int j = 0; j < 16; ++j) {
      acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(k_tile + j * head_dim + c), qc, acc[j]);
    }
  }
  _mm512_storeu_ps(scores, Tree16x16(acc));
}

void ScoresDecodeAvx512(const float* q, const float* k_tile, int head_dim, float* scores) {
  const int nf = head_dim & ~63;
  __m512 comb[16];
  for (int j = 0; j < 16; ++j) {
    const float* k = k_tile + j * head_dim;
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    for (int c = 0; c < nf; c += 64) {
      for (int r = 0; r < 4; ++r) {
        a[r] = _mm512_fmadd_ps(_mm512_loadu_ps(k + c + 16 * r), _mm512_loadu_ps(q + c + 16 * r),
                               a[r]);
      }
    }
    comb[j] = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3]));
  }
  float head[16];
  _mm512_storeu_ps(head, Tree16x16(comb));
  for (int j = 0; j < 16; ++j) {
    const float* k = k_tile + j * head_dim;
    // Products of f16 values are exact in f32; their double sum is exact
    // (hence order-free) unless their exponents span > 30 binades.
    __m512d s = _mm512_setzero_pd();
    for (int i = nf; i < head_dim; i += 16) {
      const __m512 prod = _mm512_mul_ps(_mm512_loadu_ps(k + i), _mm512_loadu_ps(q + i));
      s = _mm512_add_pd(s, _mm512_cvtps_pd(_mm512_castps512_ps256(prod)));
      s = _mm512_add_pd(s, _mm512_cvtps_pd(_mm512_extractf32x8_ps(prod, 1)));
    }
    scores[j] = static_cast<float>(static_cast<double>(head[j]) + _mm512_reduce_add_pd(s));
  }
}

inline __m512 LoadF16(const void* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
}


// One lane class: acc (nv vectors) += p[j] * v_j for j = first, first +
// stride, ... < n, in order, with the class's accumulator kept in registers.
// NV is a constant so that r[] stays in registers.
template <int NV, typename RowFn>
inline void AccumulateClassN(const float* p, int first, int stride, int n, RowFn row,
                             float* acc) {
  __m512 r[NV];
  for (int c = 0; c < NV; ++c) r[c] = _mm512_loadu_ps(acc + 16 * c);
  for (int j = first; j < n; j += stride) {
    if (p[j] == 0.0f) continue;
    const __m512 pj = _mm512_set1_ps(p[j]);
    for (int c = 0; c < NV; ++c) r[c] = _mm512_fmadd_ps(row(j, c), pj, r[c]);
  }
  for (int c = 0; c < NV; ++c) _mm512_storeu_ps(acc + 16 * c, r[c]);
}

template <typename RowFn>
inline void AccumulateClass(const float* p, int first, int stride, int n, int nv, RowFn row,
                            float* acc) {
  switch (nv) {
    case 1: return AccumulateClassN<1>(p, first, stride, n, row, acc);
    case 2: return AccumulateClassN<2>(p, first, stride, n, row, acc);
    case 3: return AccumulateClassN<3>(p, first, stride, n, row, acc);
    case 4: return AccumulateClassN<4>(p, first, stride, n, row, acc);
    case 5: return AccumulateClassN<5>(p, first, stride, n, row, acc);
    case 6: return AccumulateClassN<6>(p, first, stride, n, row, acc);
    case 7: return AccumulateClassN<7>(p, first, stride, n, row, acc);
    default: return AccumulateClassN<8>(p, first, stride, n, row, acc);
  }
}

void AccumulatePvAvx512(const float* p, const float* v_tile, int n, int head_dim, int classes,
                        float* acc) {
  const int nv = head_dim / 16;
  if (nv > 8) {  // accumulators do not fit in registers: one position at a time
    for (int j = 0; j < n; ++j) {
      if (p[j] == 0.0f) continue;
      const __m512 pj = _mm512_set1_ps(p[j]);
      float* a = acc + static_cast<int64_t>(j % classes) * head_dim;
      for (int d = 0; d < head_dim; d += 16) {
        _mm512_storeu_ps(a + d, _mm512_fmadd_ps(_mm512_loadu_ps(v_tile + j * head_dim + d), pj,
                                                _mm512_loadu_ps(a + d)));
      }
    }
    return;
  }
  const int lanes = n < classes ? n : classes;
  for (int l = 0; l < lanes; ++l) {
    AccumulateClass(
        p, l, classes, n, nv,
        [&](int j, int c) { return _mm512_loadu_ps(v_tile + j * head_dim + 16 * c); },
        acc + static_cast<int64_t>(l) * head_dim);
  }
}

// Positions ahead of the one being scored whose K rows are prefetched.
constexpr int kPrefetchAhead = 16;

// Decode score pieces of one position: comb = the 64-element main part in 4
// fma chains folded (0 + 2) + (1 + 3); tail = lanes of the leftover chunks'
// products in double, lane i: elements 16c + i then 16c + 8 + i, c
// ascending (products of f16 values are exact in f32 and in double, so an
// fma in double adds exactly the product).
template <int NV>
inline void ScoreParts(const uint16_t* k, const __m512* qv, const __m512d* qd, __m512* comb,
                       __m512d* tail) {
  constexpr int kMain = NV / 4 * 4;
  __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                 _mm512_setzero_ps()};
  for (int c = 0; c < kMain; ++c) {
    a[c % 4] = _mm512_fmadd_ps(LoadF16(k + 16 * c), qv[c], a[c % 4]);
  }
  *comb = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3]));
  __m512d t = _mm512_setzero_pd();
  for (int h = 0; h < 2 * (NV - kMain); ++h) {
    const __m256 k8 =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + 16 * kMain + 8 * h)));
    t = _mm512_fmadd_pd(_mm512_cvtps_pd(k8), qd[h], t);
  }
  *tail = t;
}

// Decode scores, 16 positions per step, NV = head_dim / 16 chunks; both
// trees (tree16 of the main part, _mm512_reduce_add_pd of the tail lanes)
// transposed over the 16 positions, two levels every 4 positions.
template <int NV>
void ScoresDecodeF16N(const float* q, const uint8_t* base, const int64_t* offsets, int n,
                      float* scores, const uint8_t* const* prefetch, int num_prefetch) {
  constexpr int kMain = NV / 4 * 4;
  constexpr int kRowBytes = 32 * NV;
  __m512 qv[kMain > 0 ? kMain : 1];
  for (int c = 0; c < kMain; ++c) qv[c] = _mm512_loadu_ps(q + 16 * c);
  __m512d qd[2 * (NV - kMain) > 0 ? 2 * (NV - kMain) : 1];
  for (int h = 0; h < 2 * (NV - kMain); ++h) {
    qd[h] = _mm512_cvtps_pd(_mm256_loadu_ps(q + 16 * kMain + 8 * h));
  }
  const int n16 = (n + 15) & ~15;
  for (int j0 = 0; j0 < n16; j0 += 16) {
    __m512 u[4];
    __m512d ud[4];
    for (int g = 0; g < 4; ++g) {
      __m512 comb[4];
      __m512d tail[4];
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const int j = j0 + 4 * g + i;
        const int64_t off = offsets[j];
        PrefetchRow<kRowBytes>(base + offsets[std::min(j + kPrefetchAhead, n16 - 1)]);
        for (int f = 0; f < num_prefetch; ++f) PrefetchRow<kRowBytes>(prefetch[f] + off);
        ScoreParts<NV>(reinterpret_cast<const uint16_t*>(base + off), qv, qd, &comb[i], &tail[i]);
      }
      u[g] = TreeLevel2(TreeLevel1(comb[0], comb[1]), TreeLevel1(comb[2], comb[3]));
      ud[g] = TreeLevel2Pd(TreeLevel1Pd(tail[0], tail[1]), TreeLevel1Pd(tail[2], tail[3]));
    }
    const __m512 head = TreeTop16(u);
    __m512d lo, hi;
    TreeTop8x16Pd(ud, &lo, &hi);
    // (float)((double)head + tail); with no leftover the tail is +0.0.
    const __m256 s_lo =
        _mm512_cvtpd_ps(_mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(head)), lo));
    const __m256 s_hi =
        _mm512_cvtpd_ps(_mm512_add_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(head, 1)), hi));
    _mm512_storeu_ps(scores + j0, _mm512_insertf32x8(_mm512_castps256_ps512(s_lo), s_hi, 1));
  }
}

struct W512 {
  using F = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kMaxColumnRegs = 6;  // 4 chains x 6 of the 32 zmm
  static F Zero() { return _mm512_setzero_ps(); }
  static F Set1(float x) { return _mm512_set1_ps(x); }
  static F Load(const float* p) { return _mm512_loadu_ps(p); }
  static void StoreU(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F LoadF16(const uint16_t* p) { return phi3::internal::LoadF16(p); }
  static F Add(F a, F b) { return _mm512_add_ps(a, b); }
  static F Fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F RoundToF16(F v) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  template <int NV>
  static void ScoresDecodeF16N(const float* q, const uint8_t* base, const int64_t* offsets, int n,
                               float* scores, const uint8_t* const* prefetch, int num_prefetch) {
    phi3::internal::ScoresDecodeF16N<NV>(q, base, offsets, n, scores, prefetch, num_prefetch);
  }
};

}  // namespace

const AttentionTileKernels& Avx512TileKernels() {
  static constexpr AttentionTileKernels kKernels = {
      "avx512",
      ScoresPromptAvx512,
      ScoresDecodeAvx512,
      AccumulatePvAvx512,
      F16ToF32Simd<W512>,
      RoundF16Simd<W512>,
      ScoresDecodeF16Simd<W512>,
      PvDecodeF16Simd<W512>,
      RopeNeoxFused};
  return kKernels;
}

}  // namespace phi3::internal
