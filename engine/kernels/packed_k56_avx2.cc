// AVX2 packed Q5_K / Q6_K tiles: a 16-row group is two halves of 8 rows
// (one ymm lane per row); vpmaddubsw pair sums, then vpmaddwd by the row's
// sub-block scale added to the lane-k sum. Passes of up to 8 tokens (16 ymm
// registers: 8 lane sums + the chunk, its scale and temporaries). Numerics: packed_k56_impl.h.
#include <immintrin.h>

#include "engine/kernels/packed_k56_impl.h"

namespace phi3::internal {
namespace {

struct V256 {
  using I = __m256i;
  using F = __m256;
  static constexpr int kRows = 8;
  static constexpr int kU = 8;
  static constexpr int kDirectU = 0;

  static I Load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static void Store(I* p, I v) { _mm256_store_si256(p, v); }
  static I ZeroI() { return _mm256_setzero_si256(); }
  static F ZeroF() { return _mm256_setzero_ps(); }
  static I Set1I8(char c) { return _mm256_set1_epi8(c); }
  static I Set1I32(int32_t v) { return _mm256_set1_epi32(v); }
  static F Set1F(float v) { return _mm256_set1_ps(v); }
  static I And(I a, I b) { return _mm256_and_si256(a, b); }
  static I Or(I a, I b) { return _mm256_or_si256(a, b); }
  template <int n>
  static I Srli16(I v) {
    return _mm256_srli_epi16(v, n);
  }
  template <int n>
  static I Slli16(I v) {
    return _mm256_slli_epi16(v, n);
  }
  template <int n>
  static I Slli32(I v) {
    return _mm256_slli_epi32(v, n);
  }
  static I AddBit4(I q, I bits, uint8_t bit) {
    const I b = _mm256_set1_epi8(static_cast<char>(bit));
    const I set = _mm256_cmpeq_epi8(_mm256_and_si256(bits, b), b);
    return _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(16)));
  }
  static I Bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
  }
  static I Maddubs(I w, I a) { return _mm256_maddubs_epi16(w, a); }
  // The empty asm pins each running sum in a register: without it GCC
  // reassociates the integer sums of a pass into trees and parks all 64
  // products of a lane on the stack first (a store and a reload each).
  // Q6_K, kernels_bench 3072x3072, 64 tokens, 1 thread, Zen 5 with the AVX2
  // kernels forced: 126 -> 146 GFLOP/s (medians of 3 alternating runs);
  // Q5_K 120 -> 153 (one alternating pair).
  static I DotPairs(I acc, I p16, I s) {
    I r = _mm256_add_epi32(acc, _mm256_madd_epi16(p16, s));
    asm("" : "+x"(r));
    return r;
  }
  static I Madd16(I a, I b) { return _mm256_madd_epi16(a, b); }
  static I AddI32(I a, I b) { return _mm256_add_epi32(a, b); }
  static I SubI32(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I WidenU8(const uint8_t* p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static I WidenS8(const int8_t* p) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static I WidenPairsU8(const uint8_t* p) {
    return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static F HalfToFloat(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static F CvtI32(I v) { return _mm256_cvtepi32_ps(v); }
  static F Mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F AddF(F a, F b) { return _mm256_add_ps(a, b); }
  static F Fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F Fnmadd(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  static void StoreRows(float* y, F v, int n) {
    if (n == 8) {
      _mm256_storeu_ps(y, v);
      return;
    }
    alignas(32) float out[8];
    _mm256_store_ps(out, v);
    for (int r = 0; r < n; ++r) y[r] = out[r];
  }
};

}  // namespace

PackedTileFn Avx2PackedQ5K() { return &K56<V256, false>::Run; }
PackedTileFn Avx2PackedQ6K() { return &K56<V256, true>::Run; }

}  // namespace phi3::internal
