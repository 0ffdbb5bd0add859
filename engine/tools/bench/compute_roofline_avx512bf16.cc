// Compiled with AVX512_BF16 flags (CMakeLists.txt); reached only after a CPU
// check. Register-only, as compute_roofline_avx512.cc.
#include <immintrin.h>

#include <cstdint>

// GCC 12 warns inside its own AVX-512 reduction intrinsics (_mm512_undefined).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace phi3::bench {

// 12 independent chains of vdpbf16ps (16 lanes x 2 bf16 products each);
// iterations x 12 x 32 MACs.
int64_t Bf16DotPeakLoop(int64_t iterations) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  __m512i w = _mm512_set1_epi16(0x3F00);  // bf16 0.5
  const __m512i a = _mm512_set1_epi16(0x3E80);  // bf16 0.25
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)w, (__m512bh)a);
    asm volatile("" : "+v"(w));
  }
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  return static_cast<int64_t>(_mm512_reduce_add_ps(s));
}

}  // namespace phi3::bench
