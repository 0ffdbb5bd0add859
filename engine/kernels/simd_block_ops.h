// Per-type Ops (float, 32-element blocks, K-quants) for KernelRT.
// Part of the x86 SIMD kernels: included only by dot_simd_impl.h (see there),
// inside the anonymous namespace of each per-ISA translation unit.
#ifndef PHI3_ENGINE_KERNELS_SIMD_BLOCK_OPS_H_
#define PHI3_ENGINE_KERNELS_SIMD_BLOCK_OPS_H_

#include "engine/kernels/simd_common.h"

namespace phi3::internal {
namespace {

// ---- float types -------------------------------------------------------------

// Activation side for Ops that read activations directly in Step.
struct PointerA {
  struct ABlock {
    const uint8_t* a;
    int64_t b;
  };
  static void LoadA(const uint8_t* a, int64_t b, ABlock* out) {
    out->a = a;
    out->b = b;
  }
};

// F32: 8 elements per step (F16, BF16: simd_f16_ops.h, simd_bf16_ops.h) into
// one 8-lane accumulator; a tail of n % 8 elements is added in scalar after
// the horizontal sum.
struct F32Ops : PointerA {
  static constexpr int kRows = 4, kTokens = kTileTokens;
  using Acc = __m256;
  using WBlock = __m256;
  static void Init(Acc* acc) { *acc = _mm256_setzero_ps(); }
  static int64_t NumBlocks(int64_t n) { return n / 8; }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) {
    *out = _mm256_loadu_ps(reinterpret_cast<const float*>(w) + 8 * b);
  }
  static void Step(const WBlock& wb, const ABlock& ab_, Acc* acc) {
    const uint8_t* a = ab_.a;
    const int64_t b = ab_.b;
    *acc = _mm256_fmadd_ps(wb, _mm256_loadu_ps(reinterpret_cast<const float*>(a) + 8 * b), *acc);
  }
  static float Finish(const Acc& acc, const uint8_t* w, const uint8_t* a, int64_t n) {
    float s = HorizontalSum(acc);
    const float* x = reinterpret_cast<const float*>(w);
    const float* y = reinterpret_cast<const float*>(a);
    for (int64_t i = n / 8 * 8; i < n; ++i) s += x[i] * y[i];
    return s;
  }
};

// ---- 32-element block types --------------------------------------------------

// acc = fma(d_w * d_a, float(int_dot lanes), acc) per block, in 8 float
// lanes (ggml_vec_dot_q8_0_q8_0's order). The int dot is exact on both
// paths: AVX2 uses |w| x sign(a, w); VNNI uses (w + 128) x a - 128 * sum(a),
// with the activation block's lane sums computed once per token (shared by
// every row of a tile) and folded into the dpbusd accumulator. The scale
// product is a vector multiply of broadcasts (same float as the scalar one).
struct Q8_0Ops {
  static constexpr int kRows = 4, kTokens = kTileTokens;
  using Acc = __m256;
  struct WBlock {
    __m256i q;  // VNNI: w + 128 (as u8); AVX2: |w|
#if !defined(PHI3_VNNI)
    __m256i w;  // the signed weights (for the sign transfer)
#endif
    __m256 d;
  };
  struct ABlock {
    __m256i q;
#if defined(PHI3_VNNI)
    __m256i neg_sum128;  // -128 * (sums of groups of 4 activations), per lane
#endif
    __m256 d;
  };
  static void Init(Acc* acc) { *acc = _mm256_setzero_ps(); }
  static int64_t NumBlocks(int64_t n) { return n / 32; }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) {
    const BlockQ8_0* blk = reinterpret_cast<const BlockQ8_0*>(w) + b;
    const __m256i q = Load256(blk->qs);
#if defined(PHI3_VNNI)
    out->q = _mm256_xor_si256(q, _mm256_set1_epi8(char(0x80)));
#else
    out->q = _mm256_sign_epi8(q, q);
    out->w = q;
#endif
    out->d = _mm256_set1_ps(HalfToFloat(blk->d));
  }
  static void LoadA(const uint8_t* a, int64_t b, ABlock* out) {
    const BlockQ8_0* ab = reinterpret_cast<const BlockQ8_0*>(a) + b;
    out->q = Load256(ab->qs);
#if defined(PHI3_VNNI)
    const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), out->q);
    out->neg_sum128 = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s, 7));
#endif
    out->d = _mm256_set1_ps(HalfToFloat(ab->d));
  }
  static void Step(const WBlock& wb, const ABlock& ab, Acc* acc) {
#if defined(PHI3_VNNI)
    const __m256i sumi = _mm256_dpbusd_epi32(ab.neg_sum128, wb.q, ab.q);
#else
    const __m256i sumi = DotU8S8(_mm256_setzero_si256(), wb.q, _mm256_sign_epi8(ab.q, wb.w));
#endif
    *acc = _mm256_fmadd_ps(_mm256_mul_ps(wb.d, ab.d), _mm256_cvtepi32_ps(sumi), *acc);
  }
  static float Finish(const Acc& acc, const uint8_t*, const uint8_t*, int64_t) {
    return HorizontalSum(acc);
  }
};

// Q4_0: unsigned nibbles q x a - 8 * sum(a); sum(a) once per activation block.
struct Q4_0Ops {
  static constexpr int kRows = 4, kTokens = kTileTokens;
  using Acc = __m256;
  struct WBlock {
    __m256i q;
    float d;
  };
  struct ABlock {
    __m256i q;
    __m256i sum8;  // 8 * (sums of groups of 4 activations), per lane
    float d;
  };
  static void Init(Acc* acc) { *acc = _mm256_setzero_ps(); }
  static int64_t NumBlocks(int64_t n) { return n / 32; }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) {
    const BlockQ4_0* blk = reinterpret_cast<const BlockQ4_0*>(w) + b;
    out->q = UnpackNibbles16(blk->qs);
    out->d = HalfToFloat(blk->d);
  }
  static void LoadA(const uint8_t* a, int64_t b, ABlock* out) {
    const BlockQ8_0* ab = reinterpret_cast<const BlockQ8_0*>(a) + b;
    out->q = Load256(ab->qs);
    out->sum8 = DotU8S8(_mm256_setzero_si256(), _mm256_set1_epi8(8), out->q);
    out->d = HalfToFloat(ab->d);
  }
  static void Step(const WBlock& wb, const ABlock& ab, Acc* acc) {
    const __m256i sumi = _mm256_sub_epi32(DotU8S8(_mm256_setzero_si256(), wb.q, ab.q), ab.sum8);
    *acc = _mm256_fmadd_ps(_mm256_set1_ps(wb.d * ab.d), _mm256_cvtepi32_ps(sumi), *acc);
  }
  static float Finish(const Acc& acc, const uint8_t*, const uint8_t*, int64_t) {
    return HorizontalSum(acc);
  }
};

// Q4_1: unsigned quants; the offset m * s is summed separately in scalar.
struct Q4_1Ops : PointerA {
  static constexpr int kRows = 4, kTokens = kTileTokens;
  struct Acc {
    __m256 v;
    float m;
  };
  struct WBlock {
    __m256i q;
    float d, m;
  };
  static void Init(Acc* acc) {
    acc->v = _mm256_setzero_ps();
    acc->m = 0.0f;
  }
  static int64_t NumBlocks(int64_t n) { return n / 32; }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) {
    const BlockQ4_1* blk = reinterpret_cast<const BlockQ4_1*>(w) + b;
    out->q = UnpackNibbles16(blk->qs);
    out->d = HalfToFloat(blk->d);
    out->m = HalfToFloat(blk->m);
  }
  static void Step(const WBlock& wb, const ABlock& ab_, Acc* acc) {
    const uint8_t* a = ab_.a;
    const int64_t b = ab_.b;
    const BlockQ8_1* ab = reinterpret_cast<const BlockQ8_1*>(a) + b;
    const __m256i sumi = DotU8S8(_mm256_setzero_si256(), wb.q, Load256(ab->qs));
    const __m256 d = _mm256_set1_ps(wb.d * HalfToFloat(ab->d));
    acc->v = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc->v);
    acc->m += wb.m * HalfToFloat(ab->s);
  }
  static float Finish(const Acc& acc, const uint8_t*, const uint8_t*, int64_t) {
    return HorizontalSum(acc.v) + acc.m;
  }
};

// ---- K-quants ------------------------------------------------------------------

// Q4_K / Q5_K: per super-block, sumi = sum_j sc_j * dot_j (int32 lanes) and
// summ = sum_j m_j * bsum_j (one int). As ggml_vec_dot_q5_K_q8_K (x86):
// acc = fma(d_a * d_w, float(sumi), acc) in 8 lanes, and a scalar
// summs = fma(-(d_a * dmin_w), float(summ), summs) (its C source says
// summs += dmin * summ; the oracle's compiler contracted it: measured);
// result = hsum(acc) + summs. (Q4_K runs the lane kernels instead; only
// its unpacking is used from here.)
// q | 16 * (bit j of each byte of qh), for q < 16.
template <int j>
inline __m256i WithBit4(__m256i q, __m256i qh) {
  __m256i at4;  // bit j of each byte moved to bit 4 (16-bit shifts keep it in its byte)
  if constexpr (j < 4) {
    at4 = _mm256_slli_epi16(qh, 4 - j);
  } else if constexpr (j > 4) {
    at4 = _mm256_srli_epi16(qh, j - 4);
  } else {
    at4 = qh;
  }
#if defined(PHI3_WIDE_REGISTERS)
  // q | (at4 & 0x10) in one instruction: A = q, B = at4, C = 0x10.
  return _mm256_ternarylogic_epi32(q, at4, _mm256_set1_epi8(0x10), 0xF8);
#else
  return _mm256_or_si256(q, _mm256_and_si256(at4, _mm256_set1_epi8(0x10)));
#endif
}

template <bool kFiveBit>
struct K45Ops : PointerA {
  // One row per register tile: an unpacked super-block is 17 vectors, so
  // several rows would spill; the tokens of a tile reuse it instead.
  static constexpr int kRows = 1, kTokens = 2 * kTileTokens;
  struct Acc {
    __m256 v;
    float m;
  };
  struct WBlock {
    __m256i q[8];     // quants of sub-block j = elements 32j .. 32j+31
    __m256i sc16[8];  // scale of sub-block j broadcast as i16
    __m256i mins16;   // i16: m0, m0, m1, m1, ..., m7, m7 (pairs of bsums)
    float d, dmin;
  };
  static void Init(Acc* acc) {
    acc->v = _mm256_setzero_ps();
    acc->m = 0.0f;
  }
  static int64_t NumBlocks(int64_t n) { return n / kQK_K; }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) {
    const uint8_t* qs;
    const uint8_t* scales;
    uint16_t d, dmin;
    __m256i qh = _mm256_setzero_si256();
    if constexpr (kFiveBit) {
      const BlockQ5_K* blk = reinterpret_cast<const BlockQ5_K*>(w) + b;
      qs = blk->qs;
      scales = blk->scales;
      d = blk->d;
      dmin = blk->dmin;
      qh = Load256(blk->qh);
    } else {
      const BlockQ4_K* blk = reinterpret_cast<const BlockQ4_K*>(w) + b;
      qs = blk->qs;
      scales = blk->scales;
      d = blk->d;
      dmin = blk->dmin;
    }
    // Unrolled (compile-time shift counts): sub-blocks 2c and 2c+1 are the
    // low and high nibbles of qs[32c..32c+31]; Q5_K adds 16 * bit j of qh.
    auto unpack = [&]<int c>() {
      const __m256i v = Load256(qs + 32 * c);
      const __m256i lo = _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F));
      if constexpr (kFiveBit) {
        out->q[2 * c] = WithBit4<2 * c>(lo, qh);
        out->q[2 * c + 1] = WithBit4<2 * c + 1>(hi, qh);
      } else {
        out->q[2 * c] = lo;
        out->q[2 * c + 1] = hi;
      }
    };
    unpack.template operator()<0>();
    unpack.template operator()<1>();
    unpack.template operator()<2>();
    unpack.template operator()<3>();
    // The 12 packed bytes as words w0..w2 decode to 8 scales and 8 mins
    // with word-wide masks (same values as GetScaleMinK4):
    //   sc[0..3] = w0 & 63, m[0..3] = w1 & 63,
    //   sc[4..7] = (w2 & 15) | ((w0 >> 6) << 4), m[4..7] = (w2 >> 4) | ((w1 >> 6) << 4).
    uint32_t wd[3];
    std::memcpy(wd, scales, 12);
    const uint32_t k63 = 0x3f3f3f3f, k15 = 0x0f0f0f0f, k3 = 0x03030303;
    alignas(16) uint32_t dec[4] = {
        wd[0] & k63, (wd[2] & k15) | (((wd[0] >> 6) & k3) << 4),
        wd[1] & k63, ((wd[2] >> 4) & k15) | (((wd[1] >> 6) & k3) << 4)};
    // sc[0..7] in bytes 0..7, mins in bytes 8..15; each scale broadcast as
    // i16 by one byte shuffle of the widened scales.
    const __m128i sc_m = _mm_load_si128(reinterpret_cast<const __m128i*>(dec));
    const __m256i sc_all = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc_m));
    for (int j = 0; j < 8; ++j) {
      out->sc16[j] = _mm256_shuffle_epi8(sc_all, _mm256_set1_epi16(static_cast<int16_t>(0x0100 * (2 * j + 1) + 2 * j)));
    }
    const __m128i m8 = _mm_srli_si128(sc_m, 8);
    out->mins16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
    out->d = HalfToFloat(d);
    out->dmin = HalfToFloat(dmin);
  }
  // Exact int32 partial sums (8 lanes) of sum_j sc_j * dot_j and of
  // sum_j m_j * bsum_j for one super-block.
  static void IntDot(const WBlock& wb, const BlockQ8_K* ab, __m256i* sumi_out,
                     __m256i* summ_out) {
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      // i16 pair sums (max 31*127*2 fits), then scaled pairwise into int32:
      // exact, and as cheap as a plain dot.
      const __m256i p16 = _mm256_maddubs_epi16(wb.q[j], Load256(ab->qs + 32 * j));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p16, wb.sc16[j]));
    }
    *sumi_out = sumi;
    *summ_out = _mm256_madd_epi16(Load256(ab->bsums), wb.mins16);
  }
  static void Step(const WBlock& wb, const ABlock& ab_, Acc* acc) {
    const BlockQ8_K* ab = reinterpret_cast<const BlockQ8_K*>(ab_.a) + ab_.b;
    __m256i sumi, summ;
    IntDot(wb, ab, &sumi, &summ);
    acc->v = _mm256_fmadd_ps(_mm256_set1_ps(ab->d * wb.d), _mm256_cvtepi32_ps(sumi), acc->v);
    const float dmin = -(ab->d * wb.dmin);
    acc->m = std::fma(dmin, static_cast<float>(HorizontalSumI32(summ)), acc->m);
  }
  static float Finish(const Acc& acc, const uint8_t*, const uint8_t*, int64_t) {
    return HorizontalSum(acc.v) + acc.m;
  }
};

// Q6_K: unsigned 6-bit quants q (0..63); dot_j = sum q*a - 32 * bsum_j,
// folded into the int32 sums (exact).
struct Q6_KOps : PointerA {
  // One row per register tile: an unpacked super-block is 17 vectors, so
  // several rows would spill; the tokens of a tile reuse it instead.
  static constexpr int kRows = 1, kTokens = 2 * kTileTokens;
  using Acc = __m256;
  struct WBlock {
    __m256i q[8];     // elements 32k .. 32k+31
    __m256i sc16[8];  // i16 scales: lanes 0..7 sub-block 2k, 8..15 sub-block 2k+1
    __m256i all16;    // i16 scales of sub-blocks 0..15 (pairs with bsums)
    float d;
  };
  static void Init(Acc* acc) { *acc = _mm256_setzero_ps(); }
  static int64_t NumBlocks(int64_t n) { return n / kQK_K; }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) {
    const BlockQ6_K* blk = reinterpret_cast<const BlockQ6_K*>(w) + b;
    const __m256i low = _mm256_set1_epi8(0x0F);
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = Load256(blk->ql + 64 * h);
      const __m256i ql1 = Load256(blk->ql + 64 * h + 32);
      const __m256i qh = Load256(blk->qh + 32 * h);
      const __m256i hi0 = _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4);
      const __m256i hi1 = _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0C)), 2);
      const __m256i hi2 = _mm256_and_si256(qh, _mm256_set1_epi8(0x30));
      const __m256i hi3 = _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(char(0xC0))), 2);
      out->q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(ql0, low), hi0);
      out->q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(ql1, low), hi1);
      out->q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low), hi2);
      out->q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low), hi3);
    }
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales));
    out->all16 = _mm256_cvtepi8_epi16(sc8);
    // Scales 0..7 (low half of all16) and 8..15 (high half) in both 128-bit
    // lanes; then one in-lane shuffle per k picks i16 2k (low lane) and
    // 2k + 1 (high lane).
    const __m256i lo = _mm256_permute4x64_epi64(out->all16, 0x44);
    const __m256i hi = _mm256_permute4x64_epi64(out->all16, 0xEE);
    for (int k = 0; k < 8; ++k) {
      const int e = 2 * (2 * k % 8), o = 2 * ((2 * k + 1) % 8);  // byte offsets in a lane
      const __m256i pick = _mm256_setr_epi8(
          e, e + 1, e, e + 1, e, e + 1, e, e + 1, e, e + 1, e, e + 1, e, e + 1, e, e + 1,
          o, o + 1, o, o + 1, o, o + 1, o, o + 1, o, o + 1, o, o + 1, o, o + 1, o, o + 1);
      out->sc16[k] = _mm256_shuffle_epi8(k < 4 ? lo : hi, pick);
    }
    out->d = HalfToFloat(blk->d);
  }
  static void Step(const WBlock& wb, const ABlock& ab_, Acc* acc) {
    const uint8_t* a = ab_.a;
    const int64_t b = ab_.b;
    const BlockQ8_K* ab = reinterpret_cast<const BlockQ8_K*>(a) + b;
    __m256i sumi = _mm256_setzero_si256();
    for (int k = 0; k < 8; ++k) {
      // i16 pair sums (max 63*127*2 fits), times the sub-block's scale.
      const __m256i p16 = _mm256_maddubs_epi16(wb.q[k], Load256(ab->qs + 32 * k));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p16, wb.sc16[k]));
    }
    // - 32 * sum_j sc_j * bsum_j, spread over the lanes (exact int32).
    const __m256i corr = _mm256_madd_epi16(Load256(ab->bsums), wb.all16);
    sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(corr, 5));
    *acc = _mm256_fmadd_ps(_mm256_set1_ps(ab->d * wb.d), _mm256_cvtepi32_ps(sumi), *acc);
  }
  static float Finish(const Acc& acc, const uint8_t*, const uint8_t*, int64_t) {
    return HorizontalSum(acc);
  }
};

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_SIMD_BLOCK_OPS_H_
