// Compiled with -mavx2 -mfma -mf16c; reached only through
// GetAttentionKernels() after a CPUID check.
#include <immintrin.h>

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

const AttentionTileKernels kAvx2TileKernels = {
    "avx2",        ScoresPromptGeneric, ScoresDecodeGeneric,          AccumulatePvGeneric,
    F16ToF32Avx2,  RoundF16Avx2,        ScoresDecodeF16Generic,       AccumulatePvDecodeF16Generic,
    RopeNeoxFused};

}  // namespace phi3::internal
