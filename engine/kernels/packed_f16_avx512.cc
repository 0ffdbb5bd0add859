// AVX-512 packed F16 / BF16 tiles: one zmm lane per row of a 16-row group, the 16
// rows' f16 values of an element widened by one vcvtph2ps and multiplied by
// the token's broadcast f32 activation. Sub-tiles of up to 6 tokens (24
// accumulators of the 32 zmm). Numerics: packed_f16_impl.h.
#include <immintrin.h>

#include "engine/kernels/packed_f16_impl.h"

// GCC 12 warns inside its own AVX-512 conversion intrinsics (_mm512_undefined).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace phi3::internal {
namespace {

struct V512 {
  using F = __m512;
  static constexpr int kRows = 16;
  static constexpr int kAcc = 24;
  static constexpr int kU = 6;
  static F LoadF16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F LoadBF16(const uint16_t* p) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
  static F Set1(float v) { return _mm512_set1_ps(v); }
  static F Zero() { return _mm512_setzero_ps(); }
  static F Fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F Add(F a, F b) { return _mm512_add_ps(a, b); }
  static void StoreRows(float* y, F v, int n) {
    _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << n) - 1), v);
  }
};

}  // namespace

PackedTileFn Avx512PackedF16(int lanes) {
  return lanes == 64 ? &F16Tiles<V512, 64>::Run : &F16Tiles<V512, 16>::Run;
}
PackedTileFn Avx512PackedBF16() { return &F16Tiles<V512, 8, true>::Run; }

}  // namespace phi3::internal
