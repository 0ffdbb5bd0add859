// A 16-lane f32 vector for the x86 SIMD kernels that follow llama.cpp's
// AVX-512 lane layout (simd_f16_ops.h, simd_bf16_ops.h): one __m512 with
// AVX-512 (PHI3_WIDE_REGISTERS), two __m256 halves (lanes 0-7, 8-15) with
// AVX2. The lane arithmetic, hence every result, is the same either way.
// Part of the x86 SIMD kernels: included only by per-ISA translation units
// (see dot_simd_impl.h), inside their anonymous namespace.
#ifndef PHI3_ENGINE_KERNELS_SIMD_V16_H_
#define PHI3_ENGINE_KERNELS_SIMD_V16_H_

#include "engine/kernels/simd_common.h"

namespace phi3::internal {
namespace {

#if defined(PHI3_WIDE_REGISTERS)
struct V16 {
  __m512 v;
};
inline V16 V16Zero() { return {_mm512_setzero_ps()}; }
inline V16 V16LoadF16(const uint16_t* p) {
  // maskz forms: GCC 12's plain ones warn about their undefined source.
  return {_mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
inline V16 V16Fma(V16 a, V16 b, V16 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
inline V16 V16Add(V16 a, V16 b) { return {_mm512_add_ps(a.v, b.v)}; }
// Pairwise tree: lane i + lane i+8, then i + i+4, i + i+2, 0 + 1 (the order
// of _mm512_reduce_add_ps, llama.cpp's hsum).
inline float V16Sum(V16 x) {
  return HorizontalSum(_mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xFF, x.v, 0), _mm512_maskz_extractf32x8_ps(0xFF, x.v, 1)));
}
#else
struct V16 {
  __m256 lo, hi;
};
inline V16 V16Zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
inline V16 V16LoadF16(const uint16_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
}
inline V16 V16Fma(V16 a, V16 b, V16 c) {
  return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
inline V16 V16Add(V16 a, V16 b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
inline float V16Sum(V16 x) { return HorizontalSum(_mm256_add_ps(x.lo, x.hi)); }
#endif

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_SIMD_V16_H_
