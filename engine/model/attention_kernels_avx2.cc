// Compiled with -mavx2 -mfma -mf16c; reached only through
// GetAttentionKernels() after a CPUID check.
#include <immintrin.h>

#include <algorithm>

#include "engine/kernels/quantize.h"
#include "engine/model/attention_kernels_internal.h"

namespace phi3::internal {
namespace {

inline __m256 Load8F16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
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

}  // namespace

const AttentionKernels kAvx2AttentionKernels = {"avx2", DotF16Avx2, AxpyF16Avx2};

}  // namespace phi3::internal

#include "engine/model/attention_rope.h"
#include "engine/model/attention_tile_generic.h"

namespace phi3::internal {

void F16ToF32Avx2(const uint16_t* x, float* dst, int n) {
  for (int i = 0; i < n; i += 8) _mm256_storeu_ps(dst + i, Load8F16(x + i));
}

void RoundF16Avx2(float* x, int n) {
  for (int i = 0; i < n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
  }
}

namespace {

// Decode kernels reading the f16 pool (AttentionTileKernels): the orders of
// attention.h with 16-lane vectors as (lo, hi) pairs of 8-lane registers.

template <int kBytes>
inline void PrefetchRowAvx2(const uint8_t* p) {  // as PrefetchRow (AVX-512 file)
  for (int i = 0; i < kBytes / 64; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(p + 64 * i), _MM_HINT_T1);
  }
  _mm_prefetch(reinterpret_cast<const char*>(p + kBytes - 1), _MM_HINT_T1);
}

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
      PrefetchRowAvx2<kRowBytes>(base + offsets[std::min(j + 16, n16 - 1)]);
      for (int f = 0; f < num_prefetch; ++f) PrefetchRowAvx2<kRowBytes>(prefetch[f] + off);
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

void ScoresDecodeF16Avx2(const float* q, const uint8_t* base, const int64_t* offsets, int n,
                         int head_dim, float* scores, const uint8_t* const* prefetch,
                         int num_prefetch) {
  const uint8_t* pf[4];
  int np = 0;
  for (int f = 0; f < num_prefetch && np < 4; ++f) {
    if (prefetch[f] != nullptr) pf[np++] = prefetch[f];
  }
  WithHeadChunks(head_dim, [&]<int NV>() {
    ScoresDecodeF16Avx2N<NV>(q, base, offsets, n, scores, pf, np);
  });
}

// As PvLanes (AVX-512 file) with G 8-column registers per chain; a chain is
// never -0, so chains r >= R hold +0 and are left out.
template <int G, int R, int kRowBytes>
void PvLanesAvx2(const float* p, const uint8_t* base, const int64_t* offsets, int n, int d0,
                 int head_dim, bool prefetch, float* x) {
  for (int l = 0; l < 16; ++l) {
    __m256 a[R][G];
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < G; ++c) a[r][c] = _mm256_setzero_ps();
    }
    for (int j0 = l; j0 < n; j0 += 64) {
      for (int r = 0; r < R; ++r) {
        const int j = j0 + 16 * r;
        if (j >= n) break;
        if (prefetch && l < 15 && j + 1 < n) PrefetchRowAvx2<kRowBytes>(base + offsets[j + 1]);
        if (p[j] == 0.0f) continue;
        const __m256 pj = _mm256_set1_ps(p[j]);
        const uint16_t* v = reinterpret_cast<const uint16_t*>(base + offsets[j]) + d0;
        for (int c = 0; c < G; ++c) a[r][c] = _mm256_fmadd_ps(Load8F16(v + 8 * c), pj, a[r][c]);
      }
    }
    float* xl = x + l * head_dim + d0;
    for (int c = 0; c < G; ++c) {
      __m256 s;
      if constexpr (R == 1) {
        s = a[0][c];
      } else if constexpr (R == 2) {
        s = _mm256_add_ps(a[0][c], a[1][c]);
      } else if constexpr (R == 3) {
        s = _mm256_add_ps(_mm256_add_ps(a[0][c], a[2][c]), a[1][c]);
      } else {
        s = _mm256_add_ps(_mm256_add_ps(a[0][c], a[2][c]), _mm256_add_ps(a[1][c], a[3][c]));
      }
      _mm256_storeu_ps(xl + 8 * c, s);
    }
  }
}

template <int G, int kRowBytes>
void PvLanesAvx2R(const float* p, const uint8_t* base, const int64_t* offsets, int n, int d0,
                  int head_dim, bool prefetch, float* x) {
  if (n <= 16) return PvLanesAvx2<G, 1, kRowBytes>(p, base, offsets, n, d0, head_dim, prefetch, x);
  if (n <= 32) return PvLanesAvx2<G, 2, kRowBytes>(p, base, offsets, n, d0, head_dim, prefetch, x);
  if (n <= 48) return PvLanesAvx2<G, 3, kRowBytes>(p, base, offsets, n, d0, head_dim, prefetch, x);
  return PvLanesAvx2<G, 4, kRowBytes>(p, base, offsets, n, d0, head_dim, prefetch, x);
}

// Passes of at most 3 column registers (4 chains x 3 of the 16 ymm); the
// first pass prefetches rows a lane ahead.
template <int NV>
void PvDecodeF16Avx2N(const float* p, const uint8_t* base, const int64_t* offsets, int n,
                      float* x) {
  constexpr int kHd = 16 * NV, kRowBytes = 32 * NV;
  for (int d0 = 0; d0 < kHd; d0 += 24) {
    const bool prefetch = d0 == 0;
    switch ((kHd - d0) / 8) {
      case 1: PvLanesAvx2R<1, kRowBytes>(p, base, offsets, n, d0, kHd, prefetch, x); break;
      case 2: PvLanesAvx2R<2, kRowBytes>(p, base, offsets, n, d0, kHd, prefetch, x); break;
      default: PvLanesAvx2R<3, kRowBytes>(p, base, offsets, n, d0, kHd, prefetch, x); break;
    }
  }
}

void PvDecodeF16Avx2(const float* p, const uint8_t* base, const int64_t* offsets, int n,
                     int head_dim, float* out) {
  alignas(32) float x[16 * 128];  // [lane][head_dim]
  WithHeadChunks(head_dim, [&]<int NV>() { PvDecodeF16Avx2N<NV>(p, base, offsets, n, x); });
  for (int d = 0; d < head_dim; d += 8) {  // tree16 over the lanes
    __m256 s[8];
    for (int i = 0; i < 8; ++i) {
      s[i] = _mm256_add_ps(_mm256_load_ps(x + i * head_dim + d),
                           _mm256_load_ps(x + (i + 8) * head_dim + d));
    }
    for (int i = 0; i < 4; ++i) s[i] = _mm256_add_ps(s[i], s[i + 4]);
    for (int i = 0; i < 2; ++i) s[i] = _mm256_add_ps(s[i], s[i + 2]);
    _mm256_storeu_ps(out + d, _mm256_add_ps(s[0], s[1]));
  }
}

}  // namespace

const AttentionTileKernels kAvx2TileKernels = {
    "avx2",       ScoresPromptGeneric, ScoresDecodeGeneric, AccumulatePvGeneric,
    F16ToF32Avx2, RoundF16Avx2,        ScoresDecodeF16Avx2, PvDecodeF16Avx2,
    RopeNeoxFused};

}  // namespace phi3::internal
