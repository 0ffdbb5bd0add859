// Compiled with AVX2 + FMA flags (CMakeLists.txt); reached only after a CPU
// check. Register-only loops in the 16 ymm registers, as our AVX2 kernels
// (packed_avx2.cc, packed_k56_avx2.cc) run them: 8 rows per ymm, so a
// 16-row group is two halves and every per-(16 rows, token, block) count
// below is twice the per-half count one iteration issues. Without
// vpdpbusd, a u8 x s8 dot is vpmaddubsw (i16 pair sums, exact for these
// quants), i16 adds while they stay exact, and vpmaddwd to widen (by 1 or
// by a scale). Loads, broadcasts, nibble unpacking and the |w| of Q8_0's
// sign trick (a per-chunk weight transform every token could share) are
// not counted. `asm volatile` marks the weights as changed after use, so
// nothing is hoisted or merged, without emitting an instruction.
#include <immintrin.h>

#include <cstdint>

namespace phi3::bench {
namespace {

// Hides v's value from the compiler without an instruction: a running sum
// passed through it stays one chain (GCC would otherwise reassociate it into
// a tree whose live partial sums spill out of the 16 registers).
inline void Opaque(__m256i& v) { asm("" : "+x"(v)); }

int64_t Observe(const __m256* acc, int n) {
  __m256 s = acc[0];
  for (int i = 1; i < n; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float sum = 0;
  for (float lane : lanes) sum += lane;
  return static_cast<int64_t>(sum);
}

}  // namespace

// 8 independent chains of vpmaddubsw, each result fed back as the next
// unsigned operand (32 MACs per instruction, no accumulation): the bare
// int8 peak. iterations x 8 x 32 MACs.
int64_t Avx2MaddubsPeakLoop(int64_t iterations) {
  __m256i acc[8];
  for (int i = 0; i < 8; ++i) acc[i] = _mm256_set1_epi8(static_cast<char>(i + 1));
  __m256i a = _mm256_set1_epi8(3);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) acc[i] = _mm256_maddubs_epi16(acc[i], a);
    asm volatile("" : "+x"(a));
  }
  __m256i s = acc[0];
  for (int i = 1; i < 8; ++i) s = _mm256_add_epi16(s, acc[i]);
  alignas(32) int16_t lanes[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  int64_t sum = 0;
  for (int16_t lane : lanes) sum += lane;
  return sum;
}

// 12 independent chains of 8-lane f32 FMAs (F16 and BF16 weights widened to
// f32: one FMA lane per multiply-add). iterations x 12 x 8 MACs.
int64_t Avx2FmaPeakLoop(int64_t iterations) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  __m256 w = _mm256_set1_ps(0.5f);
  const __m256 a = _mm256_set1_ps(0.25f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(w, a, acc[i]);
    asm volatile("" : "+x"(w));
  }
  return Observe(acc, 12);
}

// Q4_0 exact, per 8-row half, token and 32-element block: 8 vpmaddubsw + 7
// vpaddw + vpmaddwd + vpaddd + cvt + mul + fma (x2 per 16 rows). llama.cpp's
// repacked Q4_0 rounds once per block, acc = fma(float(S_b), d_w * d_a,
// acc): the 8 pair sums add exactly in i16 (<= 8 * 2 * 15 * 127), one
// vpmaddwd widens, one vpaddd applies the -8 offset (-8 * sum(a)), then the
// convert, the scale product and the fma. Two tokens per iteration;
// iterations x 2 x 8 x 32 MACs.
int64_t Avx2Q4_0Loop(int64_t iterations) {
  __m256i w[2] = {_mm256_set1_epi8(3), _mm256_set1_epi8(4)};
  const __m256i a[2] = {_mm256_set1_epi8(5), _mm256_set1_epi8(7)};
  const __m256i ones = _mm256_set1_epi16(1), corr = _mm256_set1_epi32(-640);
  __m256 dw = _mm256_set1_ps(0.5f);
  const __m256 da[2] = {_mm256_set1_ps(0.25f), _mm256_set1_ps(0.125f)};
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t it = 0; it < iterations; ++it) {
    __m256i p[2];
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      for (int u = 0; u < 2; ++u) {
        const __m256i d = _mm256_maddubs_epi16(w[k % 2], a[u]);
        p[u] = k == 0 ? d : _mm256_add_epi16(p[u], d);
        Opaque(p[u]);
      }
      if (k % 2 == 1) asm volatile("" : "+x"(w[0]), "+x"(w[1]));
    }
    for (int u = 0; u < 2; ++u) {
      const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(p[u], ones), corr);
      acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, da[u]), acc[u]);
    }
    asm volatile("" : "+x"(dw));
  }
  return Observe(acc, 2);
}

namespace {

// The 8-lane block types (Q8_0, Q4_1), one token per iteration.
template <bool kQ4_1>
int64_t LaneLoop(int64_t iterations) {
  __m256i w[2] = {_mm256_set1_epi8(3), _mm256_set1_epi8(-4)};
  const __m256i a = _mm256_set1_epi8(5), ones = _mm256_set1_epi16(1);
  __m256 dw = _mm256_set1_ps(0.5f), mw = _mm256_set1_ps(0.75f);
  const __m256 da = _mm256_set1_ps(0.25f);
  __m256 acc[9];
  for (int k = 0; k < 9; ++k) acc[k] = _mm256_setzero_ps();
  for (int64_t it = 0; it < iterations; ++it) {
    const __m256 dd = _mm256_mul_ps(dw, da);
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      const __m256i wk = w[k % 2];
      const __m256i p =
          kQ4_1 ? _mm256_maddubs_epi16(wk, a) : _mm256_maddubs_epi16(wk, _mm256_sign_epi8(a, wk));
      acc[k] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)), acc[k]);
      if (k % 2 == 1) asm volatile("" : "+x"(w[0]), "+x"(w[1]));
    }
    if constexpr (kQ4_1) acc[8] = _mm256_add_ps(acc[8], _mm256_mul_ps(mw, da));
    asm volatile("" : "+x"(dw), "+x"(mw));
  }
  return Observe(acc, 9);
}

}  // namespace

// Q8_0 exact, per 8-row half, token and 32-element block: 8 x (vpsignb +
// vpmaddubsw + vpmaddwd + cvt + fma) + mul (x2 per 16 rows). llama.cpp's
// zen4 ggml_vec_dot_q8_0_q8_0 keeps 8 float lanes per row, each 4-element
// dot converted and fma'd on its own; s8 x s8 takes vpsignb (the sign of w
// onto a) into vpmaddubsw (|w|), and vpmaddwd widens the pair sums.
// iterations x 8 x 32 MACs.
int64_t Avx2Q8_0Loop(int64_t iterations) { return LaneLoop<false>(iterations); }

// Q4_1 exact, per 8-row half, token and 32-element block: 8 x (vpmaddubsw +
// vpmaddwd + cvt + fma) + mul, plus mul + add for the min term (summs +=
// m_w * s_a per block, ggml_vec_dot_q4_1_q8_1). iterations x 8 x 32 MACs.
int64_t Avx2Q4_1Loop(int64_t iterations) { return LaneLoop<true>(iterations); }

// Q4_K exact, per 8-row half, token and 256-element super-block: 64
// vpmaddubsw + 56 vpaddw (two i16 sums per sub-block pair, exact: <= 8 * 2
// * 15 * 127), 8 vpmaddwd by the sub-block scales + 7 vpaddd for S, 4
// vpmaddwd + 3 vpaddd for the mins term M, then 2 x (cvt + mul + fma):
// llama.cpp's repacked Q4_K rounds once per super-block (acc = fma(float(S),
// d_w * d_a, acc), accm = fma(float(M), dmin_w * d_a, accm)). One token per
// iteration; iterations x 8 x 256 MACs.
int64_t Avx2Q4KLoop(int64_t iterations) {
  __m256i w[2] = {_mm256_set1_epi8(3), _mm256_set1_epi8(4)};
  __m256i sc = _mm256_set1_epi32(0x00050005), mins = _mm256_set1_epi16(2);
  const __m256i alo = _mm256_set1_epi8(5), ahi = _mm256_set1_epi8(7);
  const __m256i bsum = _mm256_set1_epi32(0x00030004);
  __m256 dw = _mm256_set1_ps(0.5f), dmw = _mm256_set1_ps(0.75f);
  const __m256 da = _mm256_set1_ps(0.25f);
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t it = 0; it < iterations; ++it) {
    __m256i sumi = _mm256_setzero_si256(), summ = sumi;
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      __m256i plo = _mm256_setzero_si256(), phi = plo;
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) {
        const __m256i dlo = _mm256_maddubs_epi16(w[k % 2], alo);
        const __m256i dhi = _mm256_maddubs_epi16(w[k % 2], ahi);
        plo = k == 0 ? dlo : _mm256_add_epi16(plo, dlo);
        phi = k == 0 ? dhi : _mm256_add_epi16(phi, dhi);
        Opaque(plo);
        Opaque(phi);
        if (k % 2 == 1) asm volatile("" : "+x"(w[0]), "+x"(w[1]));
      }
      const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(plo, sc), _mm256_madd_epi16(phi, sc));
      const __m256i m = _mm256_madd_epi16(mins, bsum);
      sumi = c == 0 ? s : _mm256_add_epi32(sumi, s);
      summ = c == 0 ? m : _mm256_add_epi32(summ, m);
      Opaque(sumi);
      Opaque(summ);
      asm volatile("" : "+x"(sc), "+x"(mins));
    }
    acc[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(dw, da), acc[0]);
    acc[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_mul_ps(dmw, da), acc[1]);
    asm volatile("" : "+x"(dw), "+x"(dmw));
  }
  return Observe(acc, 2);
}

namespace {

// Q5_K / Q6_K, one token per iteration; lanes k and k + 4 share a float
// accumulator (two fmas per iteration on each chain: still far below the
// iteration's issue time), which keeps the loop in 16 registers.
template <bool kQ6>
int64_t K56Loop(int64_t iterations) {
  __m256i w[2] = {_mm256_set1_epi8(3), _mm256_set1_epi8(4)};
  __m256i sc[2] = {_mm256_set1_epi16(2), _mm256_set1_epi16(3)};
  __m256i mins = _mm256_set1_epi16(4), sc_pairs = _mm256_set1_epi32(0x00050006);
  const __m256i a = _mm256_set1_epi8(5), bsum = _mm256_set1_epi32(0x00030004);
  __m256 dw = _mm256_set1_ps(0.5f), dmw = _mm256_set1_ps(0.75f);
  const __m256 da = _mm256_set1_ps(0.25f);
  __m256 facc[5];
  for (int k = 0; k < 5; ++k) facc[k] = _mm256_setzero_ps();
  for (int64_t it = 0; it < iterations; ++it) {
    const __m256 dd = _mm256_mul_ps(dw, da);
    if constexpr (!kQ6) {
      __m256i m = _mm256_madd_epi16(mins, bsum);
      for (int p = 1; p < 4; ++p) {
        asm volatile("" : "+x"(mins));
        m = _mm256_add_epi32(m, _mm256_madd_epi16(mins, bsum));
      }
      facc[4] = _mm256_fnmadd_ps(_mm256_mul_ps(dmw, da), _mm256_cvtepi32_ps(m), facc[4]);
    }
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      __m256i s = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        const __m256i d = _mm256_madd_epi16(_mm256_maddubs_epi16(w[j % 2], a), sc[j % 2]);
        s = j == 0 ? d : _mm256_add_epi32(s, d);
        Opaque(s);
        if (j % 2 == 1) asm volatile("" : "+x"(w[0]), "+x"(w[1]), "+x"(sc[0]), "+x"(sc[1]));
      }
      if constexpr (kQ6) {
        s = _mm256_sub_epi32(s, _mm256_slli_epi32(_mm256_madd_epi16(sc_pairs, bsum), 5));
        asm volatile("" : "+x"(sc_pairs));
      }
      facc[k % 4] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(s), facc[k % 4]);
    }
    asm volatile("" : "+x"(mins), "+x"(dw), "+x"(dmw));
  }
  return Observe(facc, 5);
}

}  // namespace

// Q5_K exact, per 8-row half, token and 256-element super-block: 64 x
// (vpmaddubsw + vpmaddwd by the sub-block scale) + 56 vpaddd into 8 lane
// sums, 8 x (cvt + fma) + mul, and the mins term 4 vpmaddwd + 3 vpaddd +
// cvt + mul + fma: ggml_vec_dot_q5_K_q8_K's 8 float lanes per row, each an
// exact int32 sum of scaled 4-element dots, converted and fma'd once per
// super-block. iterations x 8 x 256 MACs.
int64_t Avx2Q5KLoop(int64_t iterations) { return K56Loop<false>(iterations); }

// Q6_K exact, per 8-row half, token and 256-element super-block: Q5_K's
// integer and lane work without mins, plus per lane vpmaddwd + vpslld +
// vpsubd taking 32 * sum(scale * a) off (ggml_vec_dot_q6_K_q8_K's quants
// are q - 32). iterations x 8 x 256 MACs.
int64_t Avx2Q6KLoop(int64_t iterations) { return K56Loop<true>(iterations); }

}  // namespace phi3::bench
