// AVX2 packed F16 / BF16 tiles: a 16-row group is two halves of 8 rows (one ymm
// lane per row); vcvtph2ps widens the half's 8 values of an element.
// Sub-tiles of up to 3 tokens (12 accumulators of the 16 ymm). Numerics:
// packed_f16_impl.h.
#include <immintrin.h>

#include "engine/kernels/packed_f16_impl.h"

namespace phi3::internal {
namespace {

struct V256 {
  using F = __m256;
  static constexpr int kRows = 8;
  static constexpr int kAcc = 12;
  static constexpr int kU = 3;
  static F LoadF16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static F LoadBF16(const uint16_t* p) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  static F Set1(float v) { return _mm256_set1_ps(v); }
  static F Zero() { return _mm256_setzero_ps(); }
  static F Fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F Add(F a, F b) { return _mm256_add_ps(a, b); }
  static void StoreRows(float* y, F v, int n) {
    alignas(32) float out[8];
    _mm256_store_ps(out, v);
    for (int r = 0; r < n; ++r) y[r] = out[r];
  }
};

}  // namespace

PackedTileFn Avx2PackedF16(int lanes) {
  return lanes == 64 ? &F16Tiles<V256, 64>::Run : &F16Tiles<V256, 16>::Run;
}
PackedTileFn Avx2PackedBF16() { return &F16Tiles<V256, 8, true>::Run; }

}  // namespace phi3::internal
