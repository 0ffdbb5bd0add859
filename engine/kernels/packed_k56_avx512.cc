// AVX-512 (VNNI) packed Q5_K / Q6_K tiles: one zmm lane per row of a 16-row
// group; each 64-byte chunk (4 quants per row) meets a broadcast 4-byte
// activation chunk in vpmaddubsw (u8 x s8 pair sums, exact in i16: at most
// 2 * 63 * 128), and vpdpwssd multiplies the pairs by the row's sub-block
// scale and adds them to the lane-k sum. All 16 tokens of a tile keep their
// lane-k sums in registers at once (16 of the 32 zmm). Numerics: packed_k56_impl.h.
#include <immintrin.h>

#include "engine/kernels/packed_k56_impl.h"

// GCC 12 warns inside its own AVX-512 conversion intrinsics (_mm512_undefined).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace phi3::internal {
namespace {

struct V512 {
  using I = __m512i;
  using F = __m512;
  static constexpr int kRows = 16;
  static constexpr int kU = 16;
  static constexpr int kDirectU = 4;

  static I Load(const void* p) { return _mm512_loadu_si512(p); }
  static void Store(I* p, I v) { _mm512_store_si512(p, v); }
  static I ZeroI() { return _mm512_setzero_si512(); }
  static F ZeroF() { return _mm512_setzero_ps(); }
  static I Set1I8(char c) { return _mm512_set1_epi8(c); }
  static I Set1I32(int32_t v) { return _mm512_set1_epi32(v); }
  static F Set1F(float v) { return _mm512_set1_ps(v); }
  static I And(I a, I b) { return _mm512_and_si512(a, b); }
  static I Or(I a, I b) { return _mm512_or_si512(a, b); }
  template <int n>
  static I Srli16(I v) {
    return _mm512_srli_epi16(v, n);
  }
  template <int n>
  static I Slli16(I v) {
    return _mm512_slli_epi16(v, n);
  }
  template <int n>
  static I Slli32(I v) {
    return _mm512_slli_epi32(v, n);
  }
  // q + 16 where byte & bit != 0.
  static I AddBit4(I q, I bits, uint8_t bit) {
    const __mmask64 m = _mm512_test_epi8_mask(bits, _mm512_set1_epi8(static_cast<char>(bit)));
    return _mm512_mask_add_epi8(q, m, q, _mm512_set1_epi8(16));
  }
  static I Bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
  }
  static I Maddubs(I w, I a) { return _mm512_maddubs_epi16(w, a); }
  static I DotPairs(I acc, I p16, I s) { return _mm512_dpwssd_epi32(acc, p16, s); }
  static I Madd16(I a, I b) { return _mm512_madd_epi16(a, b); }
  static I AddI32(I a, I b) { return _mm512_add_epi32(a, b); }
  static I SubI32(I a, I b) { return _mm512_sub_epi32(a, b); }
  static I WidenU8(const uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static I WidenS8(const int8_t* p) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static I WidenPairsU8(const uint8_t* p) {
    return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F HalfToFloat(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F CvtI32(I v) { return _mm512_cvtepi32_ps(v); }
  static F Mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F AddF(F a, F b) { return _mm512_add_ps(a, b); }
  static F Fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F Fnmadd(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
  static void StoreRows(float* y, F v, int n) {
    _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << n) - 1), v);
  }
};

}  // namespace

// Zen 5 (phi3-mini Q4_K_M decode, 1 token, from DRAM, alternating): T0
// hints gave Q5_K 38.7 GB/s and Q6_K 39.6 on one thread where T1 gave 34.2
// and 33.7 (Q4_K's matrices in the same steps: 38.0 either way), and 2
// threads 28.2 vs 26.7 tok/s end to end; 2 super-blocks ahead ~ 4.
PackedTileFn Avx512PackedQ5K(bool l1_prefetch) {
  return l1_prefetch ? &K56<V512, false, true>::Run : &K56<V512, false, false>::Run;
}
PackedTileFn Avx512PackedQ6K(bool l1_prefetch) {
  return l1_prefetch ? &K56<V512, true, true>::Run : &K56<V512, true, false>::Run;
}

}  // namespace phi3::internal
