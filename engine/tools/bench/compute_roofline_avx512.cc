// Compiled with AVX-512 VNNI flags (CMakeLists.txt); reached only after a CPU
// check. Register-only loops: 12 independent accumulator chains hide the
// vpdpbusd latency, so the loops measure issue throughput.
#include <immintrin.h>

#include <cstdint>

// GCC 12 warns inside its own AVX-512 reduction intrinsics (_mm512_undefined).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace phi3::bench {

// Returns a value that depends on every accumulator (so nothing is elided).
// iterations x 12 x 64 int8 MACs.
int64_t VnniPeakLoop(int64_t iterations) {
  __m512i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_epi32(i);
  __m512i w = _mm512_set1_epi8(3);
  const __m512i a = _mm512_set1_epi8(5);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], w, a);
    asm volatile("" : "+v"(w));
  }
  // The sums wrap (long runs overflow int32): fold them as unsigned, which is
  // defined, instead of _mm512_reduce_add_epi32's signed additions.
  __m512i s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_epi32(s, acc[i]);
  alignas(64) uint32_t lanes[16];
  _mm512_store_si512(lanes, s);
  uint32_t sum = 0;
  for (uint32_t lane : lanes) sum += lane;
  return sum;
}

// The Q4_0 x Q8_0 block pattern per (16 rows, token, block): 8 vpdpbusd
// into one int32 sum, then acc = fma(float(sum), d_w * d_a, acc). Two
// blocks interleaved; iterations x 2 x 8 x 64 MACs.
int64_t VnniBlockLoop(int64_t iterations) {
  // Distinct opaque weights per chain so the compiler cannot merge them.
  __m512i w0 = _mm512_set1_epi8(3), w1 = _mm512_set1_epi8(4), w2 = _mm512_set1_epi8(5),
          w3 = _mm512_set1_epi8(6);
  const __m512i a = _mm512_set1_epi8(5);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  __m512 dw = _mm512_set1_ps(0.5f);
  const __m512 da0 = _mm512_set1_ps(0.25f), da1 = _mm512_set1_ps(0.125f);
  for (int64_t it = 0; it < iterations; ++it) {
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      s0 = _mm512_dpbusd_epi32(s0, w0, a);
      s1 = _mm512_dpbusd_epi32(s1, w1, a);
      s2 = _mm512_dpbusd_epi32(s2, w2, a);
      s3 = _mm512_dpbusd_epi32(s3, w3, a);
    }
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), _mm512_mul_ps(dw, da0),
                           acc0);
    acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s2, s3)), _mm512_mul_ps(dw, da1),
                           acc1);
    asm volatile("" : "+v"(w0), "+v"(w1), "+v"(w2), "+v"(w3), "+v"(dw));
  }
  return static_cast<int64_t>(_mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)));
}

// 12 independent chains of 16-lane f32 FMAs; iterations x 12 x 16 MACs.
int64_t FmaPeakLoop(int64_t iterations) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  __m512 w = _mm512_set1_ps(0.5f);
  const __m512 a = _mm512_set1_ps(0.25f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(w, a, acc[i]);
    asm volatile("" : "+v"(w));
  }
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  return static_cast<int64_t>(_mm512_reduce_add_ps(s));
}

}  // namespace phi3::bench
