// Vector exp/SiLU with llama.cpp's x86 numerics. Part of the x86 SIMD
// kernels: included only by dot_simd_impl.h (see there), inside the
// anonymous namespace of each per-ISA translation unit.
#ifndef PHI3_ENGINE_KERNELS_SIMD_ACTIVATION_H_
#define PHI3_ENGINE_KERNELS_SIMD_ACTIVATION_H_

#include "engine/kernels/activation_internal.h"
#include "engine/kernels/simd_common.h"

namespace phi3::internal {
namespace {

// Eight lanes of GgmlExpF (activation_internal.h), the same operations per
// lane. 2^n is built in the exponent field, exact while |n| <= 126; sets
// *out_of_range otherwise (the caller then uses the scalar function, which
// covers the whole range).
inline __m256 GgmlExpF8(__m256 x, bool* out_of_range) {
  using E = GgmlExpConstants;
  const __m256 shifter = _mm256_set1_ps(E::kShifter);
  const __m256 n = _mm256_sub_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(E::kLog2e), shifter), shifter);
  const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(E::kLn2Lo),
                                    _mm256_fnmadd_ps(n, _mm256_set1_ps(E::kLn2Hi), x));
  const __m256 abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
  *out_of_range = _mm256_movemask_ps(_mm256_cmp_ps(abs_n, _mm256_set1_ps(126.0f), _CMP_GT_OQ)) != 0;
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 j = _mm256_fmadd_ps(
      _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(E::kP4), b, _mm256_set1_ps(E::kP3)), u,
                      _mm256_fmadd_ps(_mm256_set1_ps(E::kP2), b, _mm256_set1_ps(E::kP1))),
      u, _mm256_fmadd_ps(_mm256_set1_ps(E::kP0), b, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(j, _mm256_castsi256_ps(e));
}

void SiluMulSimd(const float* gate, const float* up, int64_t n, float* y) {
  const int64_t vec_end = n - n % kGgmlActChunk;
  for (int64_t i = 0; i < vec_end; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    bool out_of_range;
    const __m256 e = GgmlExpF8(_mm256_sub_ps(_mm256_setzero_ps(), g), &out_of_range);
    if (out_of_range) {
      for (int64_t k = i; k < i + 8; ++k) y[k] = GgmlSiluVec(gate[k]) * up[k];
      continue;
    }
    const __m256 s = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
  }
  for (int64_t i = vec_end; i < n; ++i) y[i] = GgmlSiluTail(gate[i]) * up[i];
}

void ExpRowSimd(const float* x, int64_t n, float* y) {
  const int64_t vec_end = n - n % kGgmlActChunk;
  for (int64_t i = 0; i < vec_end; i += 8) {
    bool out_of_range;
    const __m256 e = GgmlExpF8(_mm256_loadu_ps(x + i), &out_of_range);
    if (out_of_range) {
      for (int64_t k = i; k < i + 8; ++k) y[k] = GgmlExpF(x[k]);
      continue;
    }
    _mm256_storeu_ps(y + i, e);
  }
  for (int64_t i = vec_end; i < n; ++i) y[i] = std::exp(x[i]);
}

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_SIMD_ACTIVATION_H_
