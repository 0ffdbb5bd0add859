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

// Q4_0 exact, per (16 rows, token, 32-element block): 8 vpdpbusd + add +
// cvt + mul + fma. llama.cpp's repacked Q4_0 kernel rounds once per block,
// acc = fma(float(S_b), d_w * d_a, acc), with S_b the exact integer sum: the
// two vpdpbusd chains of Q4_0Tile (the -8 offset rides in the seed) meet in
// one add, then one convert, the scale product and the fma. Two tokens per
// iteration; iterations x 2 x 8 x 64 MACs.
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

namespace {

// The rows' 16 lanes summed (keeps every accumulator observable).
int64_t Observe(const __m512* acc, int n) {
  __m512 s = acc[0];
  for (int i = 1; i < n; ++i) s = _mm512_add_ps(s, acc[i]);
  return static_cast<int64_t>(_mm512_reduce_add_ps(s));
}

// The 8-lane block types (Q8_0, Q4_1), two tokens per iteration.
template <bool kQ4_1>
int64_t LaneBlockLoop(int64_t iterations) {
  __m512i w[4];
  for (int k = 0; k < 4; ++k) w[k] = _mm512_set1_epi8(static_cast<char>(3 + k));
  const __m512i a[2] = {_mm512_set1_epi8(5), _mm512_set1_epi8(7)};
  const __m512i seed = _mm512_set1_epi32(-640);
  __m512 dw = _mm512_set1_ps(0.5f), mw = _mm512_set1_ps(0.75f);
  const __m512 da[2] = {_mm512_set1_ps(0.25f), _mm512_set1_ps(0.125f)};
  __m512 acc[2][8], m[2];
  for (int u = 0; u < 2; ++u) {
    for (int k = 0; k < 8; ++k) acc[u][k] = _mm512_setzero_ps();
    m[u] = _mm512_setzero_ps();
  }
  for (int64_t it = 0; it < iterations; ++it) {
    __m512 dd[2];
    for (int u = 0; u < 2; ++u) dd[u] = _mm512_mul_ps(dw, da[u]);
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      for (int u = 0; u < 2; ++u) {
        const __m512i s =
            _mm512_dpbusd_epi32(kQ4_1 ? _mm512_setzero_si512() : seed, w[k % 4], a[u]);
        acc[u][k] = _mm512_fmadd_ps(dd[u], _mm512_cvtepi32_ps(s), acc[u][k]);
      }
      if (k == 3) asm volatile("" : "+v"(w[0]), "+v"(w[1]), "+v"(w[2]), "+v"(w[3]));
    }
    if constexpr (kQ4_1) {
      for (int u = 0; u < 2; ++u) m[u] = _mm512_add_ps(m[u], _mm512_mul_ps(mw, da[u]));
    }
    asm volatile("" : "+v"(w[0]), "+v"(w[1]), "+v"(w[2]), "+v"(w[3]), "+v"(dw), "+v"(mw));
  }
  return Observe(acc[0], 8) + Observe(acc[1], 8) + Observe(m, 2);
}

}  // namespace

// Q8_0 exact, per (16 rows, token, 32-element block): 8 x (vpdpbusd + cvt +
// fma) + 1 mul. llama.cpp's zen4 ggml_vec_dot_q8_0_q8_0 keeps 8 float lanes
// per row, each fed acc_k = fma(d_w * d_a, float(s_k), acc_k) with s_k the
// exact sum of the block's elements 4k..4k+3: every 4-element dot is
// converted and rounded on its own, so one cvt + fma per vpdpbusd (the
// -128 offset of the unsigned weights rides in the seed). Two tokens per
// iteration; iterations x 2 x 8 x 64 MACs.
int64_t Q8_0LaneLoop(int64_t iterations) { return LaneBlockLoop<false>(iterations); }

// Q4_1 exact, per (16 rows, token, 32-element block): Q8_0's 8 x (vpdpbusd
// + cvt + fma) + mul, plus mul + add for the min term: llama.cpp's
// ggml_vec_dot_q4_1_q8_1 has the same 8 lanes and adds m_w * s_a to a
// separate float sum per block (summs += m_w * s_a). Two tokens per
// iteration; iterations x 2 x 8 x 64 MACs.
int64_t Q4_1LaneLoop(int64_t iterations) { return LaneBlockLoop<true>(iterations); }

// Q4_K exact, per (16 rows, token, 256-element super-block): 64 vpdpbusd +
// 8 vpmulld + 7 vpaddd for S = sum_j sc_j * dot_j, the mins term M = 4
// vpmaddwd + 3 vpaddd, then 2 x (cvt + mul + fma). llama.cpp's repacked
// Q4_K gemv rounds once per super-block (acc = fma(float(S), d_w * d_a,
// acc), accm = fma(float(M), dmin_w * d_a, accm)); each sub-block's dot
// (up to 32 * 15 * 127) overflows i16, so its scale is an i32 multiply.
// One token per iteration (4 pairs of 8-deep chains); iterations x 4096 MACs.
int64_t Q4KBlockLoop(int64_t iterations) {
  __m512i w[8], sc[2], mins[4];
  for (int k = 0; k < 8; ++k) w[k] = _mm512_set1_epi8(static_cast<char>(1 + k));
  for (int h = 0; h < 2; ++h) sc[h] = _mm512_set1_epi32(5 + h);
  for (int p = 0; p < 4; ++p) mins[p] = _mm512_set1_epi16(static_cast<int16_t>(2 + p));
  const __m512i alo = _mm512_set1_epi8(5), ahi = _mm512_set1_epi8(7);
  const __m512i bsum = _mm512_set1_epi32(0x00030004);
  __m512 dw = _mm512_set1_ps(0.5f), dmw = _mm512_set1_ps(0.75f);
  const __m512 da = _mm512_set1_ps(0.25f);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t it = 0; it < iterations; ++it) {
    __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      __m512i dlo = _mm512_setzero_si512(), dhi = dlo;
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) {
        dlo = _mm512_dpbusd_epi32(dlo, w[k], alo);
        dhi = _mm512_dpbusd_epi32(dhi, w[k], ahi);
      }
      const __m512i s =
          _mm512_add_epi32(_mm512_mullo_epi32(dlo, sc[0]), _mm512_mullo_epi32(dhi, sc[1]));
      sumi = c == 0 ? s : _mm512_add_epi32(sumi, s);
      asm volatile("" : "+v"(w[0]), "+v"(w[1]), "+v"(w[2]), "+v"(w[3]), "+v"(w[4]), "+v"(w[5]),
                   "+v"(w[6]), "+v"(w[7]), "+v"(sc[0]), "+v"(sc[1]));
    }
    __m512i m = _mm512_madd_epi16(mins[0], bsum);
    for (int p = 1; p < 4; ++p) m = _mm512_add_epi32(m, _mm512_madd_epi16(mins[p], bsum));
    acc[0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(dw, da), acc[0]);
    acc[1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmw, da), acc[1]);
    asm volatile("" : "+v"(mins[0]), "+v"(mins[1]), "+v"(mins[2]), "+v"(mins[3]), "+v"(dw),
                 "+v"(dmw));
  }
  return Observe(acc, 2);
}

namespace {

// Q5_K / Q6_K, one token per iteration.
template <bool kQ6>
int64_t K56BlockLoop(int64_t iterations) {
  __m512i w[4], sc[4], mins[4];
  for (int j = 0; j < 4; ++j) {
    w[j] = _mm512_set1_epi8(static_cast<char>(3 + j));
    sc[j] = _mm512_set1_epi16(static_cast<int16_t>(2 + j));
    mins[j] = _mm512_set1_epi16(static_cast<int16_t>(4 + j));
  }
  __m512i sc_pairs = _mm512_set1_epi32(0x00050006);
  const __m512i a = _mm512_set1_epi8(5);
  const __m512i bsum = _mm512_set1_epi32(0x00030004);
  __m512 dw = _mm512_set1_ps(0.5f), dmw = _mm512_set1_ps(0.75f);
  const __m512 da = _mm512_set1_ps(0.25f);
  __m512 facc[9];
  for (int k = 0; k < 9; ++k) facc[k] = _mm512_setzero_ps();
  for (int64_t it = 0; it < iterations; ++it) {
    const __m512 dd = _mm512_mul_ps(dw, da);
    if constexpr (!kQ6) {
      __m512i m = _mm512_madd_epi16(mins[0], bsum);
      for (int p = 1; p < 4; ++p) m = _mm512_add_epi32(m, _mm512_madd_epi16(mins[p], bsum));
      facc[8] = _mm512_fnmadd_ps(_mm512_mul_ps(dmw, da), _mm512_cvtepi32_ps(m), facc[8]);
    }
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        s = _mm512_dpwssd_epi32(s, _mm512_maddubs_epi16(w[j % 4], a), sc[j % 4]);
        if (j % 4 == 3) {
          asm volatile("" : "+v"(w[0]), "+v"(w[1]), "+v"(w[2]), "+v"(w[3]), "+v"(sc[0]),
                       "+v"(sc[1]), "+v"(sc[2]), "+v"(sc[3]));
        }
      }
      if constexpr (kQ6) {
        s = _mm512_sub_epi32(s, _mm512_slli_epi32(_mm512_madd_epi16(sc_pairs, bsum), 5));
        asm volatile("" : "+v"(sc_pairs));
      }
      facc[k] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(s), facc[k]);
    }
    asm volatile("" : "+v"(mins[0]), "+v"(mins[1]), "+v"(mins[2]), "+v"(mins[3]), "+v"(dw),
                 "+v"(dmw));
  }
  return Observe(facc, 9);
}

}  // namespace

// Q5_K exact, per (16 rows, token, 256-element super-block): 64 x
// (vpmaddubsw + vpdpwssd) + 8 x (cvt + fma) + mul, and the mins term 4
// vpmaddwd + 3 vpaddd + cvt + mul + fma. llama.cpp's zen4
// ggml_vec_dot_q5_K_q8_K keeps 8 float lanes per row (lane k: elements
// 4k..4k+3 of every 32-element sub-block, times that sub-block's scale, an
// exact int32 sum) and does one cvt + fma per lane per super-block; the
// scale must multiply before the lane sum, which vpdpwssd does on
// vpmaddubsw's i16 pair sums. iterations x 4096 MACs.
int64_t Q5KBlockLoop(int64_t iterations) { return K56BlockLoop<false>(iterations); }

// Q6_K exact, per (16 rows, token, 256-element super-block): Q5_K's 64 x
// (vpmaddubsw + vpdpwssd) + 8 x (cvt + fma) + mul, no mins term, and per
// lane vpmaddwd + vpslld + vpsubd: ggml_vec_dot_q6_K_q8_K's quants are
// q - 32 while vpmaddubsw takes the unsigned q, so 32 * sum(scale * a) is
// taken off each lane's exact sum before its convert. iterations x 4096 MACs.
int64_t Q6KBlockLoop(int64_t iterations) { return K56BlockLoop<true>(iterations); }

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
