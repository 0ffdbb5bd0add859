// AVX2 kernels for the packed layouts: a 16-row group is two halves of 8
// rows (one ymm lane per row). u8 x s8 products go through vpmaddubsw
// (pair sums <= 2*15*128) and are summed in i16 over 8 chunks (<= 30720,
// exact), then widened with vpmaddwd (by 1, or by the Q4_K sub-block scale).
// Rounding per lane as the row-major lane kernels (simd_lane_ops.h).
#include <immintrin.h>

#include <cstring>

#include "engine/kernels/packed_internal.h"
#include "engine/kernels/quantize.h"

namespace phi3::internal {
namespace {

inline __m256i Bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

inline __m256i Load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline __m256 HalfScales(const uint16_t* d) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d)));
}

template <int T>
void Q4_0Tile(const uint8_t* group, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
              int64_t aux_stride, int64_t nb, float* out) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[2][T];
  for (int h = 0; h < 2; ++h) {
    for (int t = 0; t < T; ++t) acc[h][t] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    const PackedQ4_0Block* blk = reinterpret_cast<const PackedQ4_0Block*>(group) + b;
    for (int h = 0; h < 2; ++h) {
      const __m256 dw = HalfScales(blk->d + 8 * h);
      __m256i q[8];
      for (int c = 0; c < 4; ++c) {
        const __m256i v = Load256(blk->qs[c][8 * h]);
        q[2 * c] = _mm256_and_si256(v, low);
        q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
      }
      for (int t = 0; t < T; ++t) {
        const int8_t* qa = (reinterpret_cast<const BlockQ8_0*>(a + t * a_stride) + b)->qs;
        const PackedActQ4_0& x = reinterpret_cast<const PackedActQ4_0*>(aux + t * aux_stride)[b];
        __m256i p = _mm256_setzero_si256();
        for (int c = 0; c < 4; ++c) {
          p = _mm256_add_epi16(p, _mm256_maddubs_epi16(q[2 * c], Bcast4(qa + 4 * c)));
          p = _mm256_add_epi16(p, _mm256_maddubs_epi16(q[2 * c + 1], Bcast4(qa + 16 + 4 * c)));
        }
        const __m256i s =
            _mm256_add_epi32(_mm256_madd_epi16(p, ones), _mm256_set1_epi32(x.neg_corr));
        acc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(x.d)),
                                    acc[h][t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < 2; ++h) _mm256_storeu_ps(out + t * kPackRows + 8 * h, acc[h][t]);
  }
}

template <int T, bool kPairs>
void Q4KTile(const uint8_t* group, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
             int64_t aux_stride, int64_t nb, float* out) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  __m256 acc[2][T], accm[2][T];
  for (int h = 0; h < 2; ++h) {
    for (int t = 0; t < T; ++t) acc[h][t] = accm[h][t] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    const PackedQ4KBlock* blk = reinterpret_cast<const PackedQ4KBlock*>(group) + b;
    const int8_t* qa[T];
    const PackedActQ4K* x[T];
    for (int t = 0; t < T; ++t) {
      qa[t] = (reinterpret_cast<const BlockQ8_K*>(a + t * a_stride) + b)->qs;
      x[t] = reinterpret_cast<const PackedActQ4K*>(aux + t * aux_stride) + b;
    }
    for (int h = 0; h < 2; ++h) {
      const __m256 dw = HalfScales(blk->d + 8 * h);
      const __m256 dmw = HalfScales(blk->dmin + 8 * h);
      __m256i sumi[T], summ[T];
      for (int t = 0; t < T; ++t) sumi[t] = summ[t] = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        __m256i plo[T], phi[T];
        for (int t = 0; t < T; ++t) plo[t] = phi[t] = _mm256_setzero_si256();
        for (int k = 0; k < 8; ++k) {
          const __m256i v = Load256(blk->qs[8 * c + k][8 * h]);
          const __m256i lo = _mm256_and_si256(v, low);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
          for (int t = 0; t < T; ++t) {
            plo[t] =
                _mm256_add_epi16(plo[t], _mm256_maddubs_epi16(lo, Bcast4(qa[t] + 64 * c + 4 * k)));
            phi[t] = _mm256_add_epi16(
                phi[t], _mm256_maddubs_epi16(hi, Bcast4(qa[t] + 64 * c + 32 + 4 * k)));
          }
        }
        // Scale of row r in both i16 halves of lane r.
        __m256i sc_lo = _mm256_cvtepu8_epi32(
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk->scales[2 * c] + 8 * h)));
        __m256i sc_hi = _mm256_cvtepu8_epi32(
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk->scales[2 * c + 1] + 8 * h)));
        sc_lo = _mm256_or_si256(sc_lo, _mm256_slli_epi32(sc_lo, 16));
        sc_hi = _mm256_or_si256(sc_hi, _mm256_slli_epi32(sc_hi, 16));
        const __m256i mins = _mm256_cvtepu8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->mins[c][8 * h])));
        for (int t = 0; t < T; ++t) {
          const __m256i s =
              _mm256_add_epi32(_mm256_madd_epi16(plo[t], sc_lo), _mm256_madd_epi16(phi[t], sc_hi));
          const __m256i m = _mm256_madd_epi16(mins, _mm256_set1_epi32(x[t]->bsum_pairs[c]));
          if constexpr (kPairs) {
            const __m256 da = _mm256_set1_ps(x[t]->d);
            acc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, da), acc[h][t]);
            accm[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_mul_ps(dmw, da), accm[h][t]);
          } else {
            sumi[t] = _mm256_add_epi32(sumi[t], s);
            summ[t] = _mm256_add_epi32(summ[t], m);
          }
        }
      }
      if constexpr (!kPairs) {
        for (int t = 0; t < T; ++t) {
          const __m256 da = _mm256_set1_ps(x[t]->d);
          acc[h][t] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[t]), _mm256_mul_ps(dw, da), acc[h][t]);
          accm[h][t] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(summ[t]), _mm256_mul_ps(dmw, da), accm[h][t]);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < 2; ++h) {
      _mm256_storeu_ps(out + t * kPackRows + 8 * h, _mm256_sub_ps(acc[h][t], accm[h][t]));
    }
  }
}

using TileBody = void (*)(const uint8_t*, const uint8_t*, int64_t, const uint8_t*, int64_t, int64_t,
                          float*);

template <int T, TileBody kT, TileBody k1>
void Tiles(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
           int64_t aux_stride, int nt, int64_t nb, float* y, int64_t y_stride) {
  alignas(32) float out[T * kPackRows];
  int t = 0;
  for (; t + T <= nt; t += T) {
    kT(group, a + t * a_stride, a_stride, aux + t * aux_stride, aux_stride, nb, out);
    StorePackedRows(out, T, nr, y + t * y_stride, y_stride);
  }
  for (; t < nt; ++t) {
    k1(group, a + t * a_stride, a_stride, aux + t * aux_stride, aux_stride, nb, out);
    StorePackedRows(out, 1, nr, y + t * y_stride, y_stride);
  }
}

void Q4_0Packed(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride,
                const uint8_t* aux, int64_t aux_stride, int nt, int64_t n, float* y,
                int64_t y_stride) {
  Tiles<2, &Q4_0Tile<2>, &Q4_0Tile<1>>(group, nr, a, a_stride, aux, aux_stride, nt, n / kQK4_0, y,
                                       y_stride);
}

template <bool kPairs>
void Q4KPacked(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
               int64_t aux_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  Tiles<2, &Q4KTile<2, kPairs>, &Q4KTile<1, kPairs>>(group, nr, a, a_stride, aux, aux_stride, nt,
                                                     n / kQK_K, y, y_stride);
}

}  // namespace

const PackedKernels& Avx2PackedKernels() {
  static const PackedKernels k{&Q4_0Packed, &Q4KPacked<false>, &Q4KPacked<true>,
                               Avx2PackedQ5K(), Avx2PackedQ6K()};
  return k;
}

}  // namespace phi3::internal
