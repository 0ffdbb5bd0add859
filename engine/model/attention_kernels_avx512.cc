// AVX-512F tile kernels (AttentionTileKernels). Compiled with -mavx512f
// -mavx512dq -mfma; reached only after a CPUID check. Same results as the
// generic kernels, bit for bit: the lane orders are those of attention.h.
#include <immintrin.h>

#include "engine/model/attention_kernels_internal.h"
#include "engine/model/attention_rope.h"

namespace phi3::internal {
namespace {

// out[j] = tree16(v[j]) for 16 vectors, by a transposed reduction that pairs
// the same lanes as tree16 at every level.
inline __m512 Tree16x16(const __m512* v) {
  __m512 t[8], u[4], w[2];
  for (int i = 0; i < 8; ++i) {  // lanes i + i+8; t[i] = (v[2i] | v[2i+1])
    t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
  }
  for (int i = 0; i < 4; ++i) {  // + lanes 4 apart; u[i] = v[4i .. 4i+3] by 128-bit block
    u[i] = _mm512_add_ps(
        _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
        _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
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

void RoundF16Avx512(float* x, int n) {
  for (int i = 0; i < n; i += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm512_storeu_ps(x + i, _mm512_cvtph_ps(h));
  }
}

void ScoresDecodeF16Avx512(const float* q, const uint8_t* base, const int64_t* offsets,
                           int head_dim, float* scores) {
  const int nf = head_dim & ~63;
  __m512 comb[16];
  for (int j = 0; j < 16; ++j) {
    const uint16_t* k = reinterpret_cast<const uint16_t*>(base + offsets[j]);
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    for (int c = 0; c < nf; c += 64) {
      for (int r = 0; r < 4; ++r) {
        a[r] = _mm512_fmadd_ps(LoadF16(k + c + 16 * r), _mm512_loadu_ps(q + c + 16 * r), a[r]);
      }
    }
    comb[j] = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3]));
  }
  float head[16];
  _mm512_storeu_ps(head, Tree16x16(comb));
  for (int j = 0; j < 16; ++j) {
    const uint16_t* k = reinterpret_cast<const uint16_t*>(base + offsets[j]);
    __m512d s = _mm512_setzero_pd();
    for (int i = nf; i < head_dim; i += 16) {
      const __m512 prod = _mm512_mul_ps(LoadF16(k + i), _mm512_loadu_ps(q + i));
      s = _mm512_add_pd(s, _mm512_cvtps_pd(_mm512_castps512_ps256(prod)));
      s = _mm512_add_pd(s, _mm512_cvtps_pd(_mm512_extractf32x8_ps(prod, 1)));
    }
    scores[j] = static_cast<float>(static_cast<double>(head[j]) + _mm512_reduce_add_pd(s));
  }
}

void AccumulatePvDecodeF16Avx512(const float* p, const uint8_t* base, const int64_t* offsets,
                                 int n, int head_dim, float* acc) {
  const int nv = head_dim / 16;
  const int lanes = n < 64 ? n : 64;
  for (int l = 0; l < lanes; ++l) {
    AccumulateClass(
        p, l, 64, n, nv,
        [&](int j, int c) {
          return LoadF16(reinterpret_cast<const uint16_t*>(base + offsets[j]) + 16 * c);
        },
        acc + static_cast<int64_t>(l) * head_dim);
  }
}

void F16ToF32Avx512(const uint16_t* x, float* dst, int n) {
  for (int i = 0; i < n; i += 16) {
    _mm512_storeu_ps(dst + i,
                     _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
  }
}

}  // namespace

const AttentionTileKernels kAvx512TileKernels = {
    "avx512",       ScoresPromptAvx512,    ScoresDecodeAvx512,
    AccumulatePvAvx512, F16ToF32Avx512,    RoundF16Avx512,
    ScoresDecodeF16Avx512, AccumulatePvDecodeF16Avx512, RopeNeoxFused};

}  // namespace phi3::internal
