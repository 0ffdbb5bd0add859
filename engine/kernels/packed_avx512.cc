// AVX-512 (VNNI) kernels for the packed layouts: one zmm lane per row of a
// 16-row group, vpdpbusd of a 64-byte weight chunk (4 bytes per row) with a
// broadcast 4-byte activation chunk. Rounding per lane as the row-major
// lane kernels (simd_lane_ops.h): acc = fma(float(S_b), d_w * d_a, acc).
// Token tiles of 8 (Q4_0) or 4 reuse each unpacked weight chunk; a token's
// arithmetic is the same in any tile (batch invariance).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "engine/kernels/packed_internal.h"
#include "engine/kernels/quantize.h"

// GCC 12 warns inside its own AVX-512 conversion intrinsics (_mm512_undefined).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace phi3::internal {
namespace {

inline __m512i Bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// T tokens (1..16) x one 16-row group, all blocks: each 64-byte weight
// chunk is loaded and unpacked once for all T tokens, so a decode step of
// up to 16 sequences streams every weight byte from memory once. One
// vpdpbusd chain per token (seeded with -8 * sum(a), exact in int32) and T
// accumulators + 8 unpacked chunks fit the 32 zmm registers. The next blocks
// are prefetched: the groups of a thread's range are contiguous, so this
// also runs ahead into the next group.
template <int T>
void Q4_0Tile(const uint8_t* group, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
              int64_t aux_stride, int64_t nb, float* out) {
  static_assert(T >= 1 && T <= 16);
  constexpr int kPrefetchBlocks = 6;
  const __m512i low = _mm512_set1_epi8(0x0F);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const PackedQ4_0Block* blocks = reinterpret_cast<const PackedQ4_0Block*>(group);
  for (int64_t b = 0; b < nb; ++b) {
    const PackedQ4_0Block* blk = blocks + b;
    const char* ahead = reinterpret_cast<const char*>(blk + kPrefetchBlocks);
    for (int l = 0; l < 5; ++l) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->d)));
    __m512i q[8];
    for (int c = 0; c < 4; ++c) {
      const __m512i v = _mm512_loadu_si512(blk->qs[c]);
      q[2 * c] = _mm512_and_si512(v, low);
      q[2 * c + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
    }
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const int8_t* qa = (reinterpret_cast<const BlockQ8_0*>(a + t * a_stride) + b)->qs;
      const PackedActQ4_0& x = reinterpret_cast<const PackedActQ4_0*>(aux + t * aux_stride)[b];
      __m512i s = _mm512_dpbusd_epi32(_mm512_set1_epi32(x.neg_corr), q[0], Bcast4(qa));
      s = _mm512_dpbusd_epi32(s, q[1], Bcast4(qa + 16));
      s = _mm512_dpbusd_epi32(s, q[2], Bcast4(qa + 4));
      s = _mm512_dpbusd_epi32(s, q[3], Bcast4(qa + 20));
      s = _mm512_dpbusd_epi32(s, q[4], Bcast4(qa + 8));
      s = _mm512_dpbusd_epi32(s, q[5], Bcast4(qa + 24));
      s = _mm512_dpbusd_epi32(s, q[6], Bcast4(qa + 12));
      s = _mm512_dpbusd_epi32(s, q[7], Bcast4(qa + 28));
      acc[t] =
          _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(x.d)), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out + t * kPackRows, acc[t]);
}

template <int T, bool kPairs>
void Q4KTile(const uint8_t* group, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
             int64_t aux_stride, int64_t nb, float* out) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  __m512 acc[T], accm[T];
  for (int t = 0; t < T; ++t) acc[t] = accm[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const PackedQ4KBlock* blk = reinterpret_cast<const PackedQ4KBlock*>(group) + b;
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->d)));
    const __m512 dmw =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->dmin)));
    const int8_t* qa[T];
    const PackedActQ4K* x[T];
    __m512i sumi[T];
    for (int t = 0; t < T; ++t) {
      const BlockQ8_K* ab = reinterpret_cast<const BlockQ8_K*>(a + t * a_stride) + b;
      qa[t] = ab->qs;
      x[t] = reinterpret_cast<const PackedActQ4K*>(aux + t * aux_stride) + b;
      sumi[t] = _mm512_setzero_si512();
    }
    for (int c = 0; c < 4; ++c) {
      __m512i dlo[T], dhi[T];
      for (int t = 0; t < T; ++t) dlo[t] = dhi[t] = _mm512_setzero_si512();
      for (int k = 0; k < 8; ++k) {
        const __m512i v = _mm512_loadu_si512(blk->qs[8 * c + k]);
        const __m512i lo = _mm512_and_si512(v, low);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        for (int t = 0; t < T; ++t) {
          dlo[t] = _mm512_dpbusd_epi32(dlo[t], lo, Bcast4(qa[t] + 64 * c + 4 * k));
          dhi[t] = _mm512_dpbusd_epi32(dhi[t], hi, Bcast4(qa[t] + 64 * c + 32 + 4 * k));
        }
      }
      const __m512i sc_lo = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales[2 * c])));
      const __m512i sc_hi = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales[2 * c + 1])));
      for (int t = 0; t < T; ++t) {
        const __m512i s =
            _mm512_add_epi32(_mm512_mullo_epi32(dlo[t], sc_lo), _mm512_mullo_epi32(dhi[t], sc_hi));
        if constexpr (kPairs) {
          const __m512i mins = _mm512_cvtepu8_epi16(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->mins[c])));
          const __m512i m = _mm512_madd_epi16(mins, _mm512_set1_epi32(x[t]->bsum_pairs[c]));
          const __m512 da = _mm512_set1_ps(x[t]->d);
          acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, da), acc[t]);
          accm[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmw, da), accm[t]);
        } else {
          sumi[t] = _mm512_add_epi32(sumi[t], s);
        }
      }
    }
    if constexpr (!kPairs) {
      for (int t = 0; t < T; ++t) {
        __m512i m = _mm512_setzero_si512();
        for (int p = 0; p < 4; ++p) {
          const __m512i mins = _mm512_cvtepu8_epi16(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->mins[p])));
          m = _mm512_add_epi32(m, _mm512_madd_epi16(mins, _mm512_set1_epi32(x[t]->bsum_pairs[p])));
        }
        const __m512 da = _mm512_set1_ps(x[t]->d);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[t]), _mm512_mul_ps(dw, da), acc[t]);
        accm[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmw, da), accm[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out + t * kPackRows, _mm512_sub_ps(acc[t], accm[t]));
}

using TileBody = void (*)(const uint8_t*, const uint8_t*, int64_t, const uint8_t*, int64_t, int64_t,
                          float*);

// Q4_K: token tiles of TA, then 4, then single tokens: a token's
// arithmetic is the same in each (lanes never mix tokens).
template <int TA, TileBody kA, TileBody k4, TileBody k1>
void Tiles(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
           int64_t aux_stride, int nt, int64_t nb, float* y, int64_t y_stride) {
  alignas(64) float out[8 * kPackRows];
  int t = 0;
  for (; t + TA <= nt; t += TA) {
    kA(group, a + t * a_stride, a_stride, aux + t * aux_stride, aux_stride, nb, out);
    StorePackedRows(out, TA, nr, y + t * y_stride, y_stride);
  }
  for (; t + 4 <= nt; t += 4) {
    k4(group, a + t * a_stride, a_stride, aux + t * aux_stride, aux_stride, nb, out);
    StorePackedRows(out, 4, nr, y + t * y_stride, y_stride);
  }
  for (; t < nt; ++t) {
    k1(group, a + t * a_stride, a_stride, aux + t * aux_stride, aux_stride, nb, out);
    if (nr == kPackRows) {
      std::memcpy(y + t * y_stride, out, sizeof(float) * kPackRows);
    } else {
      StorePackedRows(out, 1, nr, y + t * y_stride, y_stride);
    }
  }
}

template <int... T>
constexpr std::array<TileBody, sizeof...(T)> Q4_0TileTable(std::integer_sequence<int, T...>) {
  return {&Q4_0Tile<T + 1>...};
}

// Tiles of 16 tokens, then one tile of the remaining 1..15.
void Q4_0Packed(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride,
                const uint8_t* aux, int64_t aux_stride, int nt, int64_t n, float* y,
                int64_t y_stride) {
  static constexpr auto kTiles = Q4_0TileTable(std::make_integer_sequence<int, 16>());
  alignas(64) float out[16 * kPackRows];
  const int64_t nb = n / kQK4_0;
  for (int t = 0; t < nt; t += 16) {
    const int count = std::min(16, nt - t);
    kTiles[count - 1](group, a + t * a_stride, a_stride, aux + t * aux_stride, aux_stride, nb, out);
    if (count == 1 && nr == kPackRows) {
      std::memcpy(y + t * y_stride, out, sizeof(float) * kPackRows);
    } else {
      StorePackedRows(out, count, nr, y + t * y_stride, y_stride);
    }
  }
}

template <bool kPairs>
void Q4KPacked(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
               int64_t aux_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  Tiles<4, &Q4KTile<4, kPairs>, &Q4KTile<4, kPairs>, &Q4KTile<1, kPairs>>(
      group, nr, a, a_stride, aux, aux_stride, nt, n / kQK_K, y, y_stride);
}

}  // namespace

const PackedKernels& Avx512PackedKernels() {
  static const PackedKernels k{&Q4_0Packed, &Q4KPacked<false>, &Q4KPacked<true>};
  return k;
}

}  // namespace phi3::internal
