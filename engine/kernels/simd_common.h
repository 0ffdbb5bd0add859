// Helpers and the register-tile kernel template of the x86 SIMD kernels.
// Part of the x86 SIMD kernels: included only by dot_simd_impl.h (see there),
// inside the anonymous namespace of each per-ISA translation unit.
#ifndef PHI3_ENGINE_KERNELS_SIMD_COMMON_H_
#define PHI3_ENGINE_KERNELS_SIMD_COMMON_H_

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "engine/kernels/kernel_table.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/quantize_internal.h"

namespace phi3::internal {
namespace {


inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

// Sum of 8 floats in a fixed order.
inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int HorizontalSumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// acc + sum over groups of 4 of u8 x s8 products (int32 lanes).
// REQUIRES: no u8*s8 pair sum exceeds int16 (true for all our operands).
inline __m256i DotU8S8(__m256i acc, __m256i u, __m256i s) {
#if defined(PHI3_VNNI)
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  const __m256i p16 = _mm256_maddubs_epi16(u, s);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
#endif
}

// Signed x signed via |x| and sign transfer.
inline __m256i DotS8S8(__m256i acc, __m256i x, __m256i y) {
  return DotU8S8(acc, _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

inline __m256i Load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Unpacks 16 bytes of nibbles into 32 bytes: low nibbles in bytes 0..15,
// high nibbles in bytes 16..31 (the order of Q4_0/Q4_1 elements).
inline __m256i UnpackNibbles16(const uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// ---- kernel template -------------------------------------------------------

template <typename Ops, int R, int T>
void KernelRT(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride, int64_t n,
              float* y, int64_t y_stride) {
  typename Ops::Acc acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) Ops::Init(&acc[r][t]);
  }
  const int64_t nb = Ops::NumBlocks(n);
  for (int64_t b = 0; b < nb; ++b) {
    typename Ops::WBlock wb[R];
    for (int r = 0; r < R; ++r) Ops::LoadW(w + r * w_stride, b, &wb[r]);
    for (int t = 0; t < T; ++t) {
      typename Ops::ABlock ab;
      Ops::LoadA(a + t * a_stride, b, &ab);
      for (int r = 0; r < R; ++r) Ops::Step(wb[r], ab, &acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      y[t * y_stride + r] = Ops::Finish(acc[r][t], w + r * w_stride, a + t * a_stride, n);
    }
  }
}

template <typename Ops>
float DotByKernel(const void* w, const void* a, int64_t n) {
  float y;
  KernelRT<Ops, 1, 1>(static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, n,
                      &y, 1);
  return y;
}

template <typename Ops, int R>
void TileRows(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride, int nt,
              int64_t n, float* y, int64_t y_stride) {
  constexpr int T = Ops::kTokens;
  int t = 0;
  for (; t + T <= nt; t += T) {
    KernelRT<Ops, R, T>(w, w_stride, a + t * a_stride, a_stride, n, y + t * y_stride, y_stride);
  }
  for (; t < nt; ++t) {
    KernelRT<Ops, R, 1>(w, w_stride, a + t * a_stride, a_stride, n, y + t * y_stride, y_stride);
  }
}

template <typename Ops>
void TileByKernel(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a, int64_t a_stride,
                  int nt, int64_t n, float* y, int64_t y_stride) {
  constexpr int R = Ops::kRows;
  int r = 0;
  if (nt == 1) {
    // Decode streams the weights from DRAM: one row at a time keeps a single
    // sequential stream, which the hardware prefetchers follow; reading R
    // rows (R * row bytes apart) at once measured 2-4x slower from DRAM on
    // Zen 4 (Q8_0 25.6 vs 6.5 GB/s per core), while equal in cache.
    for (; r < nr; ++r) {
      KernelRT<Ops, 1, 1>(w + r * w_stride, w_stride, a, a_stride, n, y + r, y_stride);
    }
    return;
  }
  for (; r + R <= nr; r += R) {
    TileRows<Ops, R>(w + r * w_stride, w_stride, a, a_stride, nt, n, y + r, y_stride);
  }
  for (; r < nr; ++r) {
    TileRows<Ops, 1>(w + r * w_stride, w_stride, a, a_stride, nt, n, y + r, y_stride);
  }
}

template <typename Ops>
constexpr TypeKernels MakeKernels() {
  return TypeKernels{&DotByKernel<Ops>, &TileByKernel<Ops>};
}

#if defined(PHI3_WIDE_REGISTERS)
inline constexpr int kTileTokens = 4;  // 32 vector registers
#else
inline constexpr int kTileTokens = 2;  // 16 vector registers
#endif

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_SIMD_COMMON_H_
