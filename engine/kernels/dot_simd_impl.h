// Body of the x86 SIMD kernels, included by dot_avx2.cc and dot_avx512.cc,
// which compile it with their own target flags. Everything is in an
// anonymous namespace so the two copies never merge at link time (that
// would let AVX-512 code run on an AVX2-only CPU).
//
// Design: a kernel for type X is a set of Ops (unpack a weight block,
// prepare an activation block, combine them into an accumulator, finish). One
// template, KernelRT<Ops, R, T>, computes an R-rows x T-tokens tile; dot()
// is KernelRT<Ops, 1, 1>. Each (row, token) accumulator sees exactly the
// same instruction sequence whatever R and T are, so tile results are
// bit-identical to dot() (the batch-invariance MatMul promises). Weight
// blocks are unpacked once per tile and reused for all T tokens.
//
// Integer dots use u8 x s8 multiply-adds: maddubs+madd on AVX2, vpdpbusd
// with AVX512-VNNI (PHI3_VNNI); both give the exact same int32 sums.
#ifndef PHI3_ENGINE_KERNELS_DOT_SIMD_IMPL_H_
#define PHI3_ENGINE_KERNELS_DOT_SIMD_IMPL_H_

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "engine/kernels/kernel_table.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/quantize_internal.h"

namespace phi3::internal {
namespace {

inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

// Sum of 8 floats in a fixed order.
inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int HorizontalSumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// acc + sum over groups of 4 of u8 x s8 products (int32 lanes).
// REQUIRES: no u8*s8 pair sum exceeds int16 (true for all our operands).
inline __m256i DotU8S8(__m256i acc, __m256i u, __m256i s) {
#if defined(PHI3_VNNI)
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  const __m256i p16 = _mm256_maddubs_epi16(u, s);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
#endif
}

// Signed x signed via |x| and sign transfer.
inline __m256i DotS8S8(__m256i acc, __m256i x, __m256i y) {
  return DotU8S8(acc, _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

inline __m256i Load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Unpacks 16 bytes of nibbles into 32 bytes: low nibbles in bytes 0..15,
// high nibbles in bytes 16..31 (the order of Q4_0/Q4_1 elements).
inline __m256i UnpackNibbles16(const uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// ---- kernel template -------------------------------------------------------

template <typename Ops, int R, int T>
void KernelRT(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride, int64_t n,
              float* y, int64_t y_stride) {
  typename Ops::Acc acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) Ops::Init(&acc[r][t]);
  }
  const int64_t nb = Ops::NumBlocks(n);
  for (int64_t b = 0; b < nb; ++b) {
    typename Ops::WBlock wb[R];
    for (int r = 0; r < R; ++r) Ops::LoadW(w + r * w_stride, b, &wb[r]);
    for (int t = 0; t < T; ++t) {
      typename Ops::ABlock ab;
      Ops::LoadA(a + t * a_stride, b, &ab);
      for (int r = 0; r < R; ++r) Ops::Step(wb[r], ab, &acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      y[t * y_stride + r] = Ops::Finish(acc[r][t], w + r * w_stride, a + t * a_stride, n);
    }
  }
}

template <typename Ops>
float DotByKernel(const void* w, const void* a, int64_t n) {
  float y;
  KernelRT<Ops, 1, 1>(static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, n,
                      &y, 1);
  return y;
}

template <typename Ops, int R>
void TileRows(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride, int nt,
              int64_t n, float* y, int64_t y_stride) {
  constexpr int T = Ops::kTokens;
  int t = 0;
  for (; t + T <= nt; t += T) {
    KernelRT<Ops, R, T>(w, w_stride, a + t * a_stride, a_stride, n, y + t * y_stride, y_stride);
  }
  for (; t < nt; ++t) {
    KernelRT<Ops, R, 1>(w, w_stride, a + t * a_stride, a_stride, n, y + t * y_stride, y_stride);
  }
}

template <typename Ops>
void TileByKernel(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a, int64_t a_stride,
                  int nt, int64_t n, float* y, int64_t y_stride) {
  constexpr int R = Ops::kRows;
  int r = 0;
  for (; r + R <= nr; r += R) {
    TileRows<Ops, R>(w + r * w_stride, w_stride, a, a_stride, nt, n, y + r, y_stride);
  }
  for (; r < nr; ++r) {
    TileRows<Ops, 1>(w + r * w_stride, w_stride, a, a_stride, nt, n, y + r, y_stride);
  }
}

template <typename Ops>
constexpr TypeKernels MakeKernels() {
  return TypeKernels{&DotByKernel<Ops>, &TileByKernel<Ops>};
}

#if defined(PHI3_WIDE_REGISTERS)
inline constexpr int kTileTokens = 4;  // 32 vector registers
#else
inline constexpr int kTileTokens = 2;  // 16 vector registers
#endif

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

// F32, F16, BF16: 8 elements per step into one 8-lane accumulator; a tail
// of n % 8 elements is added in scalar after the horizontal sum.
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

struct F16Ops : PointerA {
  static constexpr int kRows = 4, kTokens = kTileTokens;
  using Acc = __m256;
  using WBlock = __m256;
  static void Init(Acc* acc) { *acc = _mm256_setzero_ps(); }
  static int64_t NumBlocks(int64_t n) { return n / 8; }
  static __m256 Load(const uint8_t* p, int64_t b) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * b)));
  }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) { *out = Load(w, b); }
  static void Step(const WBlock& wb, const ABlock& ab_, Acc* acc) {
    const uint8_t* a = ab_.a;
    const int64_t b = ab_.b;
    *acc = _mm256_fmadd_ps(wb, Load(a, b), *acc);
  }
  static float Finish(const Acc& acc, const uint8_t* w, const uint8_t* a, int64_t n) {
    float s = HorizontalSum(acc);
    const uint16_t* x = reinterpret_cast<const uint16_t*>(w);
    const uint16_t* y = reinterpret_cast<const uint16_t*>(a);
    for (int64_t i = n / 8 * 8; i < n; ++i) s += HalfToFloat(x[i]) * HalfToFloat(y[i]);
    return s;
  }
};

struct BF16Ops : PointerA {
  static constexpr int kRows = 4, kTokens = kTileTokens;
  using Acc = __m256;
  using WBlock = __m256;
  static void Init(Acc* acc) { *acc = _mm256_setzero_ps(); }
  static int64_t NumBlocks(int64_t n) { return n / 8; }
  static __m256 Load(const uint8_t* p, int64_t b) {
    const __m256i v =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * b)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) { *out = Load(w, b); }
  static void Step(const WBlock& wb, const ABlock& ab_, Acc* acc) {
    const uint8_t* a = ab_.a;
    const int64_t b = ab_.b;
    *acc = _mm256_fmadd_ps(wb, Load(a, b), *acc);
  }
  static float Finish(const Acc& acc, const uint8_t* w, const uint8_t* a, int64_t n) {
    float s = HorizontalSum(acc);
    const uint16_t* x = reinterpret_cast<const uint16_t*>(w);
    const uint16_t* y = reinterpret_cast<const uint16_t*>(a);
    for (int64_t i = n / 8 * 8; i < n; ++i) s += BF16ToF32(x[i]) * BF16ToF32(y[i]);
    return s;
  }
};

// ---- 32-element block types --------------------------------------------------

// acc += (d_w * d_a) * int_dot per block, in 8 float lanes. The int dot
// is exact on both paths: AVX2 uses |w| x sign(a, w); VNNI uses
// (a + 128) x w - 128 * sum(w), with sum(w) computed once per weight block.
struct Q8_0Ops {
  static constexpr int kRows = 4, kTokens = kTileTokens;
  using Acc = __m256;
  struct WBlock {
    __m256i q;
#if defined(PHI3_VNNI)
    __m256i sum128;  // 128 * sum of the block's weights, in lane 0
#endif
    float d;
  };
  struct ABlock {
    __m256i q;  // VNNI: a + 128 (as u8); AVX2: a
    float d;
  };
  static void Init(Acc* acc) { *acc = _mm256_setzero_ps(); }
  static int64_t NumBlocks(int64_t n) { return n / 32; }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) {
    const BlockQ8_0* blk = reinterpret_cast<const BlockQ8_0*>(w) + b;
    out->q = Load256(blk->qs);
    out->d = HalfToFloat(blk->d);
#if defined(PHI3_VNNI)
    const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), out->q);
    out->sum128 = _mm256_slli_epi32(s, 7);
#endif
  }
  static void LoadA(const uint8_t* a, int64_t b, ABlock* out) {
    const BlockQ8_0* ab = reinterpret_cast<const BlockQ8_0*>(a) + b;
#if defined(PHI3_VNNI)
    out->q = _mm256_xor_si256(Load256(ab->qs), _mm256_set1_epi8(char(0x80)));
#else
    out->q = Load256(ab->qs);
#endif
    out->d = HalfToFloat(ab->d);
  }
  static void Step(const WBlock& wb, const ABlock& ab, Acc* acc) {
#if defined(PHI3_VNNI)
    const __m256i sumi =
        _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ab.q, wb.q), wb.sum128);
#else
    const __m256i sumi = DotS8S8(_mm256_setzero_si256(), wb.q, ab.q);
#endif
    *acc = _mm256_fmadd_ps(_mm256_set1_ps(wb.d * ab.d), _mm256_cvtepi32_ps(sumi), *acc);
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
// summ = sum_j m_j * bsum_j (int); acc += d*sumi, macc += dmin*summ.
template <bool kFiveBit>
struct K45Ops : PointerA {
  static constexpr int kRows = 4, kTokens = kTileTokens;
  struct Acc {
    __m256 v;
    __m256 m;
  };
  struct WBlock {
    __m256i q[8];     // quants of sub-block j = elements 32j .. 32j+31
    __m256i sc16[8];  // scale of sub-block j broadcast as i16
    __m256i mins16;   // i16: m0, m0, m1, m1, ..., m7, m7 (pairs of bsums)
    float d, dmin;
  };
  static void Init(Acc* acc) {
    acc->v = _mm256_setzero_ps();
    acc->m = _mm256_setzero_ps();
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
    const __m256i low = _mm256_set1_epi8(0x0F);
    for (int c = 0; c < 4; ++c) {
      const __m256i v = Load256(qs + 32 * c);
      out->q[2 * c] = _mm256_and_si256(v, low);
      out->q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
      if constexpr (kFiveBit) {
        for (int h = 0; h < 2; ++h) {
          const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << (2 * c + h)));
          const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
          out->q[2 * c + h] =
              _mm256_or_si256(out->q[2 * c + h], _mm256_and_si256(set, _mm256_set1_epi8(16)));
        }
      }
    }
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
    const uint8_t* sc = reinterpret_cast<const uint8_t*>(dec);  // sc[0..7], mins at sc[8..15]
    for (int j = 0; j < 8; ++j) out->sc16[j] = _mm256_set1_epi16(sc[j]);
    const __m128i m8 = _mm_srli_si128(_mm_load_si128(reinterpret_cast<const __m128i*>(dec)), 8);
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
    acc->m = _mm256_fmadd_ps(_mm256_set1_ps(ab->d * wb.dmin), _mm256_cvtepi32_ps(summ), acc->m);
  }
  static float Finish(const Acc& acc, const uint8_t*, const uint8_t*, int64_t) {
    return HorizontalSum(acc.v) - HorizontalSum(acc.m);
  }
};

// Q6_K: unsigned 6-bit quants q (0..63); dot_j = sum q*a - 32 * bsum_j,
// folded into the int32 sums (exact).
struct Q6_KOps : PointerA {
  static constexpr int kRows = 4, kTokens = kTileTokens;
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
    for (int k = 0; k < 8; ++k) {
      const __m128i pick = _mm_set_epi64x(0x0101010101010101LL * (2 * k + 1),
                                          0x0101010101010101LL * (2 * k));
      out->sc16[k] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick));
    }
    out->all16 = _mm256_cvtepi8_epi16(sc8);
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

// ---- one output per lane (llama.cpp's repacked-kernel numerics) ------------
//
// llama.cpp runs Q4_0 and Q4_K through its repacked 8-row kernels on x86
// (ggml-cpu/repack.cpp), which keep one float lane per output and, per
// block b in order, do acc = fma(float(S_b), d_w * d_a, acc) (plus, for
// Q4_K, accm = fma(float(M_b), dmin_w * d_a, accm); result acc - accm),
// where S_b and M_b are the exact integer block sums. Doing the same gives
// our Q4_0/Q4_K outputs the same rounding as llama.cpp's. Eight rows' int32
// partial sums are reduced into one vector (lane k = row k); a lone output
// (dot(), rows left over) runs the identical arithmetic in scalar.

inline __m256i ReduceRows8(const __m256i v[8]) {
  const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]);
  const __m256i h23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]);
  const __m256i h67 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i q03 = _mm256_hadd_epi32(h01, h23);  // [rows 0..3 low | rows 0..3 high]
  const __m256i q47 = _mm256_hadd_epi32(h45, h67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(q03, q47, 0x20),
                          _mm256_permute2x128_si256(q03, q47, 0x31));
}

struct LaneQ4_0 {
  static constexpr bool kHasMin = false;
  using WBlock = Q4_0Ops::WBlock;
  static int64_t NumBlocks(int64_t n) { return n / 32; }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) { Q4_0Ops::LoadW(w, b, out); }
  static float ScaleA(const uint8_t* a, int64_t b) {
    return HalfToFloat((reinterpret_cast<const BlockQ8_0*>(a) + b)->d);
  }
  static float MinScaleW(const WBlock&) { return 0.0f; }
  static void IntDot(const WBlock& wb, const uint8_t* a, int64_t b, __m256i* s, __m256i*) {
    const __m256i aq = Load256((reinterpret_cast<const BlockQ8_0*>(a) + b)->qs);
    *s = _mm256_sub_epi32(DotU8S8(_mm256_setzero_si256(), wb.q, aq),
                          DotU8S8(_mm256_setzero_si256(), _mm256_set1_epi8(8), aq));
  }
};

template <bool kFiveBit>
struct LaneK45 {
  static constexpr bool kHasMin = true;
  using WBlock = typename K45Ops<kFiveBit>::WBlock;
  static int64_t NumBlocks(int64_t n) { return n / kQK_K; }
  static void LoadW(const uint8_t* w, int64_t b, WBlock* out) {
    K45Ops<kFiveBit>::LoadW(w, b, out);
  }
  static float ScaleA(const uint8_t* a, int64_t b) {
    return (reinterpret_cast<const BlockQ8_K*>(a) + b)->d;
  }
  static float MinScaleW(const WBlock& wb) { return wb.dmin; }
  static void IntDot(const WBlock& wb, const uint8_t* a, int64_t b, __m256i* s, __m256i* m) {
    K45Ops<kFiveBit>::IntDot(wb, reinterpret_cast<const BlockQ8_K*>(a) + b, s, m);
  }
};

template <typename L>
float LaneDot(const void* w, const void* a, int64_t n) {
  const uint8_t* wp = static_cast<const uint8_t*>(w);
  const uint8_t* ap = static_cast<const uint8_t*>(a);
  float acc = 0.0f, accm = 0.0f;
  for (int64_t b = 0; b < L::NumBlocks(n); ++b) {
    typename L::WBlock wb;
    L::LoadW(wp, b, &wb);
    __m256i s, m = _mm256_setzero_si256();
    L::IntDot(wb, ap, b, &s, &m);
    const float da = L::ScaleA(ap, b);
    acc = std::fma(static_cast<float>(HorizontalSumI32(s)), wb.d * da, acc);
    if constexpr (L::kHasMin) {
      accm = std::fma(static_cast<float>(HorizontalSumI32(m)), L::MinScaleW(wb) * da, accm);
    }
  }
  return L::kHasMin ? acc - accm : acc;
}

// 8 rows x T tokens.
template <typename L, int T>
void LaneKernel8(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride,
                 int64_t n, float* y, int64_t y_stride) {
  __m256 acc[T], accm[T];
  for (int t = 0; t < T; ++t) acc[t] = accm[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < L::NumBlocks(n); ++b) {
    typename L::WBlock wb[8];
    alignas(32) float dw[8], dmw[8];
    for (int r = 0; r < 8; ++r) {
      L::LoadW(w + r * w_stride, b, &wb[r]);
      dw[r] = wb[r].d;
      dmw[r] = L::MinScaleW(wb[r]);
    }
    const __m256 dwv = _mm256_load_ps(dw), dmwv = _mm256_load_ps(dmw);
    for (int t = 0; t < T; ++t) {
      const uint8_t* at = a + t * a_stride;
      __m256i s[8], m[8];
      for (int r = 0; r < 8; ++r) {
        m[r] = _mm256_setzero_si256();
        L::IntDot(wb[r], at, b, &s[r], &m[r]);
      }
      const __m256 da = _mm256_set1_ps(L::ScaleA(at, b));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ReduceRows8(s)), _mm256_mul_ps(dwv, da), acc[t]);
      if constexpr (L::kHasMin) {
        accm[t] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(ReduceRows8(m)), _mm256_mul_ps(dmwv, da), accm[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    alignas(32) float out[8];
    _mm256_store_ps(out, L::kHasMin ? _mm256_sub_ps(acc[t], accm[t]) : acc[t]);
    std::memcpy(y + t * y_stride, out, sizeof(out));
  }
}

template <typename L>
void LaneTile(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a, int64_t a_stride,
              int nt, int64_t n, float* y, int64_t y_stride) {
  constexpr int T = kTileTokens;
  int r = 0;
  for (; r + 8 <= nr; r += 8) {
    int t = 0;
    for (; t + T <= nt; t += T) {
      LaneKernel8<L, T>(w + r * w_stride, w_stride, a + t * a_stride, a_stride, n,
                        y + t * y_stride + r, y_stride);
    }
    for (; t < nt; ++t) {
      LaneKernel8<L, 1>(w + r * w_stride, w_stride, a + t * a_stride, a_stride, n,
                        y + t * y_stride + r, y_stride);
    }
  }
  for (; r < nr; ++r) {
    for (int t = 0; t < nt; ++t) {
      y[t * y_stride + r] = LaneDot<L>(w + r * w_stride, a + t * a_stride, n);
    }
  }
}

template <typename L>
constexpr TypeKernels MakeLaneKernels() {
  return TypeKernels{&LaneDot<L>, &LaneTile<L>};
}

// ---- activation encoders (bit-identical to the scalar references) -----------

// Rounds 32 floats * id to nearest-even int8 (|values| <= 127).
inline void RoundToInt8x32(const float* x, __m256 mul, int8_t* out, __m256i* sum32) {
  __m256i i[4];
  for (int k = 0; k < 4; ++k) {
    const __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), mul),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    i[k] = _mm256_cvtps_epi32(v);
  }
  if (sum32 != nullptr) {
    *sum32 = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
  }
  const __m256i p01 = _mm256_packs_epi32(i[0], i[1]);
  const __m256i p23 = _mm256_packs_epi32(i[2], i[3]);
  const __m256i p = _mm256_packs_epi16(p01, p23);
  const __m256i fixed = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), fixed);
}

inline float MaxAbs(const float* x, int n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_setzero_ps();
  for (int k = 0; k < n; k += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)));
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

void EncodeQ8_0(const float* x, void* dst, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    const float amax = MaxAbs(x, 32);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    y[i].d = static_cast<uint16_t>(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT));
    RoundToInt8x32(x, _mm256_set1_ps(id), y[i].qs, nullptr);
  }
}

void EncodeQ8_1(const float* x, void* dst, int64_t n) {
  BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    const float amax = MaxAbs(x, 32);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    __m256i sum;
    RoundToInt8x32(x, _mm256_set1_ps(id), y[i].qs, &sum);
    y[i].d = static_cast<uint16_t>(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
    y[i].s = static_cast<uint16_t>(
        _cvtss_sh(d * static_cast<float>(HorizontalSumI32(sum)), _MM_FROUND_TO_NEAREST_INT));
  }
}

void EncodeQ8_K(const float* x, void* dst, int64_t n) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    const float amax = MaxAbs(x, kQK_K);
    if (amax == 0.0f) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    // The reference keeps the sign of the first element with |x| == amax.
    int first = 0;
    while (std::fabs(x[first]) != amax) ++first;
    const float iscale = -127.0f / x[first];
    const __m256 mul = _mm256_set1_ps(iscale);
    for (int k = 0; k < kQK_K; k += 32) {
      // min(127, v): only +127.something can exceed; clamp before packing.
      __m256i iv[4];
      for (int q = 0; q < 4; ++q) {
        const __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + k + 8 * q), mul),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        iv[q] = _mm256_min_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(127));
      }
      const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(iv[0], iv[1]),
                                           _mm256_packs_epi32(iv[2], iv[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + k),
                          _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
    for (int j = 0; j < 16; ++j) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y[i].qs + 16 * j));
      const __m256i q16 = _mm256_cvtepi8_epi16(q);
      const __m256i s32 = _mm256_madd_epi16(q16, _mm256_set1_epi16(1));
      y[i].bsums[j] = static_cast<int16_t>(HorizontalSumI32(s32));
    }
    y[i].d = 1.0f / iscale;
  }
}

void EncodeF16(const float* x, void* dst, int64_t n) {
  uint16_t* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) y[i] = static_cast<uint16_t>(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

void EncodeBF16(const float* x, void* dst, int64_t n) {
  uint16_t* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256i inf = _mm256_set1_epi32(0x7f800000);
  for (; i + 8 <= n; i += 8) {
    const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
    const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rounded =
        _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
    const __m256i r = _mm256_blendv_epi8(rounded, nan, is_nan);
    const __m256i packed = _mm256_packus_epi32(r, r);  // values fit 16 bits
    const __m256i ordered = _mm256_permute4x64_epi64(packed, 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_castsi256_si128(ordered));
  }
  for (; i < n; ++i) y[i] = F32ToBF16(x[i]);
}

KernelTable MakeSimdTable() {
  KernelTable t;
  t.f32 = MakeKernels<F32Ops>();
  t.f16 = MakeKernels<F16Ops>();
  t.bf16 = MakeKernels<BF16Ops>();
  t.q8_0 = MakeKernels<Q8_0Ops>();
  t.q4_0 = MakeLaneKernels<LaneQ4_0>();
  t.q4_1 = MakeKernels<Q4_1Ops>();
  t.q4_k = MakeLaneKernels<LaneK45<false>>();
  t.q5_k = MakeKernels<K45Ops<true>>();
  t.q6_k = MakeKernels<Q6_KOps>();
  t.to_f16 = EncodeF16;
  t.to_bf16 = EncodeBF16;
  t.to_q8_0 = EncodeQ8_0;
  t.to_q8_1 = EncodeQ8_1;
  t.to_q8_k = EncodeQ8_K;
  return t;
}

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_DOT_SIMD_IMPL_H_
