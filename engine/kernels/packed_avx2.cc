// AVX2 kernels for the packed layouts: a 16-row group is two halves of 8
// rows (one ymm lane per row). u8 x s8 products go through vpmaddubsw
// (pair sums <= 2*15*128) and are summed in i16 over 8 chunks (<= 30720,
// exact), then widened with vpmaddwd (by 1, or by the Q4_K sub-block scale).
// Rounding per row as the row-major kernels (Q4_0 / Q4_K: the lane kernels
// of simd_lane_ops.h; Q8_0 / Q4_1: 8 lanes, see their packed blocks).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "engine/kernels/packed_internal.h"
#include "engine/kernels/quantize.h"

namespace phi3::internal {
namespace {

inline __m256i Bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

inline __m256i Load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline __m256 HalfScales(const uint16_t* d) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d)));
}

// T tokens (1..4) x one 16-row group, all blocks. Each broadcast 4-byte
// activation chunk feeds both 8-row halves, and each unpacked weight chunk
// all T tokens: per 16 rows x token x block, 8 broadcasts, 16 vpmaddubsw and
// 16 i16 adds (the i16 sums of 8 chunks, exact as above) instead of 16
// broadcasts when the halves ran one after the other. 2T i16 sums, two
// chunk registers and one broadcast fit the 16 ymm registers; the float
// accumulators live in `out` (L1) and are touched once per block. With 2+
// tokens the chunk loop stays rolled: unrolled, GCC 12 hoists the 4 chunks'
// loads and unpacking and spills (T = 4: 62 ymm stores and 26 reloads per
// block next to 64 vpmaddubsw). Rolled, on AMD EPYC Zen 5, 2 vCPU,
// PHI3_KERNELS=avx2: phi3-bench q4_0 parallel:16 1.13-1.40x in 4 alternated
// pairs. One token (decode) has the registers to spare and stays unrolled:
// rolled, its tg128 was behind in 5 of 6 alternated pairs (medians 13.4 vs
// 14.3 tok/s, same host and level).
// The activations are T consecutive token slots of a PackedActQ4_0Tile
// tile ([nb][kBatchTokens]; x = the first slot of block 0), so a block's
// quants, scale and -8 * sum of one token sit in one cache line (decode:
// see MatMulPacked).
template <int T>
void Q4_0Tile(const uint8_t* group, const PackedActQ4_0Tile* x, int64_t nb, float* out) {
  static_assert(T >= 1 && T <= 4);
  // Blocks ahead, into L1, as the AVX-512 kernel (the group's blocks are
  // contiguous, and so are a thread's groups).
  constexpr int kPrefetchBlocks = T == 1 ? 12 : 6;
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int i = 0; i < T * kPackRows; i += 8) _mm256_storeu_ps(out + i, _mm256_setzero_ps());
  for (int64_t b = 0; b < nb; ++b) {
    const PackedQ4_0Block* blk = reinterpret_cast<const PackedQ4_0Block*>(group) + b;
    const char* ahead = reinterpret_cast<const char*>(blk + kPrefetchBlocks);
    for (int l = 0; l < 5; ++l) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
    const PackedActQ4_0Tile* xb = x + b * kBatchTokens;
    // i16 sums of the 8 chunks, seeded by the first (low nibbles of chunk 0).
    __m256i p[2][T];
    auto chunk = [&](int c) {
      const __m256i v0 = Load256(blk->qs[c][0]);
      const __m256i v1 = Load256(blk->qs[c][8]);
      const __m256i lo0 = _mm256_and_si256(v0, low), lo1 = _mm256_and_si256(v1, low);
      for (int t = 0; t < T; ++t) {
        const __m256i ac = Bcast4(xb[t].qs + 4 * c);
        const __m256i m0 = _mm256_maddubs_epi16(lo0, ac), m1 = _mm256_maddubs_epi16(lo1, ac);
        p[0][t] = c == 0 ? m0 : _mm256_add_epi16(p[0][t], m0);
        p[1][t] = c == 0 ? m1 : _mm256_add_epi16(p[1][t], m1);
      }
      const __m256i hi0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), low);
      const __m256i hi1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), low);
      for (int t = 0; t < T; ++t) {
        const __m256i ac = Bcast4(xb[t].qs + 16 + 4 * c);
        p[0][t] = _mm256_add_epi16(p[0][t], _mm256_maddubs_epi16(hi0, ac));
        p[1][t] = _mm256_add_epi16(p[1][t], _mm256_maddubs_epi16(hi1, ac));
      }
    };
    if constexpr (T == 1) {
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) chunk(c);
    } else {
#pragma GCC unroll 1
      for (int c = 0; c < 4; ++c) chunk(c);
    }
    const __m256 dw[2] = {HalfScales(blk->d), HalfScales(blk->d + 8)};
    for (int t = 0; t < T; ++t) {
      const __m256i corr = _mm256_set1_epi32(xb[t].neg_corr);
      const __m256 da = _mm256_set1_ps(xb[t].d);
      for (int h = 0; h < 2; ++h) {
        const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(p[h][t], ones), corr);
        float* o = out + t * kPackRows + 8 * h;
        _mm256_storeu_ps(o, _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw[h], da),
                                            _mm256_loadu_ps(o)));
      }
    }
  }
}

// One token's accumulators in the 8-lane roundings (PackedQ8_0Block,
// PackedQ4_1Block) for 8 rows: lane[k] holds lane k of each row; min is
// Q4_1's summs (unused for Q8_0).
struct LaneAcc {
  __m256 lane[8];
  __m256 min;
};

// The lane loop of the 8-lane kinds' 4-token passes (Kind::Pass): lane k by
// lane k, the 8 accumulators of lane k (2 halves x 4 tokens) in registers
// over blocks [b0, b1), each chunk's operands (Kind::LoadPassChunk) serving
// the 4 tokens and each broadcast activation chunk both halves; acc =
// fma(dd[block - b0][h][t], float(lane sum), acc) block by block, as the
// one-token Span. Token t's quants of block b at qs[t] + b * qs_stride.
// Prefetches Kind::kPassPrefetchBlocks ahead on lane 0 if `prefetch`.
template <typename Kind>
__attribute__((always_inline)) inline void PassLanes(const typename Kind::Block* blocks,
                                                     int64_t b0, int64_t b1,
                                                     const int8_t* const* qs, int64_t qs_stride,
                                                     const __m256 (*dd)[2][4],
                                                     LaneAcc* const facc[2], bool prefetch) {
  constexpr int kT = 4;
  constexpr int kLines = (sizeof(typename Kind::Block) + 63) / 64;
#pragma GCC unroll 1
  for (int k = 0; k < 8; ++k) {
    __m256 acc[2][kT];
    for (int h = 0; h < 2; ++h) {
      for (int t = 0; t < kT; ++t) acc[h][t] = facc[h][t].lane[k];
    }
    for (int64_t b = b0; b < b1; ++b) {
      const typename Kind::Block* blk = blocks + b;
      if (prefetch && k == 0) {
        const char* ahead = reinterpret_cast<const char*>(blk + Kind::kPassPrefetchBlocks);
        for (int l = 0; l < kLines; ++l) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
      }
      const typename Kind::PassChunk c = Kind::LoadPassChunk(blk, k);
      for (int t = 0; t < kT; ++t) {
        const __m256i xa = Bcast4(qs[t] + b * qs_stride + 4 * k);
        for (int h = 0; h < 2; ++h) {
          acc[h][t] = _mm256_fmadd_ps(dd[b - b0][h][t],
                                      _mm256_cvtepi32_ps(Kind::PassLaneSum(c, h, xa)), acc[h][t]);
        }
      }
    }
    for (int h = 0; h < 2; ++h) {
      for (int t = 0; t < kT; ++t) facc[h][t].lane[k] = acc[h][t];
    }
  }
}

// Q8_0, one token x rows [8h, 8h + 8) of a group, blocks [b0, b1): the 8
// lane accumulators stay in registers across the span and are loaded from /
// stored to facc at its ends. Signed x signed products as the row-major
// kernel: |w| x sign(a, w) in vpmaddubsw (|w| <= 128 and |a| <= 127, as Q8
// quantization rounds x / (amax / 127): pairs <= 2 * 128 * 127 = 32512, exact
// in i16), widened by vpmaddwd. Pass: the same per lane for kPassTokens
// tokens at once (used when a span has that many tokens left).
struct Q8_0Lanes {
  using Block = PackedQ8_0Block;
  static constexpr int64_t kBlockElements = kQK8_0;
  static constexpr bool kMin = false;
  static constexpr int kPassTokens = 4;

  static void Span(const Block* blocks, int h, int64_t b0, int64_t b1, const uint8_t* a,
                   const uint8_t* aux, int64_t entry_bytes, LaneAcc* facc, bool prefetch) {
    // 4.3 KB ahead (4 blocks measured ~5% slower decode from DRAM, Zen 5).
    constexpr int kPrefetchBlocks = 8;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[8];
    for (int k = 0; k < 8; ++k) acc[k] = facc->lane[k];
    const BlockQ8_0* ab = reinterpret_cast<const BlockQ8_0*>(a);
    for (int64_t b = b0; b < b1; ++b) {
      const Block* blk = blocks + b;
      if (prefetch) {
        const char* ahead = reinterpret_cast<const char*>(blk + kPrefetchBlocks);
        for (int l = 0; l < 9; ++l) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
      }
      const __m256 dd = _mm256_mul_ps(
          HalfScales(blk->d + 8 * h),
          _mm256_set1_ps(LaneAuxEntry<PackedActQ8_0>(aux, entry_bytes, b).d));
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) {
        const __m256i w = Load256(blk->qs[k][8 * h]);
        const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w),
                                               _mm256_sign_epi8(Bcast4(ab[b].qs + 4 * k), w));
        const __m256i s = _mm256_madd_epi16(p, ones);
        acc[k] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(s), acc[k]);
      }
    }
    for (int k = 0; k < 8; ++k) facc->lane[k] = acc[k];
  }

  // kPassTokens tokens x both halves, blocks [b0, b1) (at most kMaxSpan),
  // lane k by lane k: the 8 accumulators of lane k (2 halves x 4 tokens) stay
  // in registers over the span, so each chunk's w and |w| serve 4 tokens and
  // each broadcast activation chunk both halves; the per-block scales
  // d_w * d_a are computed once into dd (L1) and read as fma operands. Same
  // per-lane fma sequence as Span (blocks in order), so the same bits.
  // facc[h]: the 4 tokens' accumulators of half h. Measured (kernels_bench,
  // 3072x3072, 64 tokens, 1 thread, Zen 5 with the AVX2 kernels forced,
  // alternating runs): 103 -> 121 GFLOP/s (medians). Per chunk, token and
  // half it still costs sign, maddubs, madd, cvt and fma. Measured slower:
  // converting with a magic-number add instead of vcvtdq2ps (97: two more
  // constants spill an accumulator), pair sums by shifts instead of vpmaddwd
  // (84).
  static constexpr int64_t kMaxSpan = 16;
  static constexpr int kPassPrefetchBlocks = 4;
  static void Pass(const Block* blocks, int64_t b0, int64_t b1, const uint8_t* a, int64_t a_stride,
                   const uint8_t* aux, int64_t aux_stride, int64_t entry_bytes,
                   LaneAcc* const facc[2], bool prefetch) {
    constexpr int kT = kPassTokens;
    const int8_t* qs[kT];
    for (int t = 0; t < kT; ++t) qs[t] = reinterpret_cast<const BlockQ8_0*>(a + t * a_stride)->qs;
    alignas(32) __m256 dd[kMaxSpan][2][kT];  // [block - b0][half][token]
    for (int64_t b = b0; b < b1; ++b) {
      const __m256 dw[2] = {HalfScales(blocks[b].d), HalfScales(blocks[b].d + 8)};
      for (int t = 0; t < kT; ++t) {
        const float da = LaneAuxEntry<PackedActQ8_0>(aux + t * aux_stride, entry_bytes, b).d;
        for (int h = 0; h < 2; ++h) dd[b - b0][h][t] = _mm256_mul_ps(dw[h], _mm256_set1_ps(da));
      }
    }
    PassLanes<Q8_0Lanes>(blocks, b0, b1, qs, sizeof(BlockQ8_0), dd, facc, prefetch);
  }

  // Pass's per-chunk operands: both halves' w and |w| (shared by the tokens).
  struct PassChunk {
    __m256i w[2], aw[2];
  };
  static PassChunk LoadPassChunk(const Block* blk, int k) {
    const __m256i w0 = Load256(blk->qs[k][0]), w1 = Load256(blk->qs[k][8]);
    return {{w0, w1}, {_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(w1, w1)}};
  }
  // Lane sums of half h with the broadcast activation chunk xa.
  static __m256i PassLaneSum(const PassChunk& c, int h, __m256i xa) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(c.aw[h], _mm256_sign_epi8(xa, c.w[h])),
                             _mm256_set1_epi16(1));
  }
};

// Q4_1, as Q8_0Lanes: chunk k % 4's low (k < 4) or high nibbles are lane
// k's unsigned weights (pairs <= 2 * 15 * 128 in vpmaddubsw); the min term
// summs = summs + m_w * s_a per block, in its own register. A block's
// activations (quants, d, s) from its PackedActQ4_1 entry.
struct Q4_1Lanes {
  using Block = PackedQ4_1Block;
  static constexpr int64_t kBlockElements = kQK4_1;
  static constexpr bool kMin = true;
  static constexpr int kPassTokens = 4;

  static void Span(const Block* blocks, int h, int64_t b0, int64_t b1, const uint8_t* a,
                   const uint8_t* aux, int64_t entry_bytes, LaneAcc* facc, bool prefetch) {
    // 3.8 KB ahead, as the AVX-512 kernel.
    constexpr int kPrefetchBlocks = 12;
    const __m256i low = _mm256_set1_epi8(0x0F);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[8];
    for (int k = 0; k < 8; ++k) acc[k] = facc->lane[k];
    __m256 m = facc->min;
    for (int64_t b = b0; b < b1; ++b) {
      const Block* blk = blocks + b;
      if (prefetch) {
        const char* ahead = reinterpret_cast<const char*>(blk + kPrefetchBlocks);
        for (int l = 0; l < 5; ++l) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
      }
      const PackedActQ4_1& x = LaneAuxEntry<PackedActQ4_1>(aux, entry_bytes, b);
      const __m256 dd = _mm256_mul_ps(HalfScales(blk->d + 8 * h), _mm256_set1_ps(x.d));
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) {
        const __m256i v = Load256(blk->qs[k % 4][8 * h]);
        const __m256i w = _mm256_and_si256(k < 4 ? v : _mm256_srli_epi16(v, 4), low);
        const __m256i p = _mm256_maddubs_epi16(w, Bcast4(x.qs + 4 * k));
        const __m256i s = _mm256_madd_epi16(p, ones);
        acc[k] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(s), acc[k]);
      }
      m = _mm256_add_ps(m, _mm256_mul_ps(HalfScales(blk->m + 8 * h), _mm256_set1_ps(x.s)));
    }
    for (int k = 0; k < 8; ++k) facc->lane[k] = acc[k];
    facc->min = m;
  }

  // As Q8_0Lanes::Pass (one unpacked chunk for 4 tokens, one broadcast for
  // both halves); the min terms go in block order in the scale pass.
  static constexpr int64_t kMaxSpan = 16;
  static constexpr int kPassPrefetchBlocks = 12;
  static void Pass(const Block* blocks, int64_t b0, int64_t b1, const uint8_t* a, int64_t a_stride,
                   const uint8_t* aux, int64_t aux_stride, int64_t entry_bytes,
                   LaneAcc* const facc[2], bool prefetch) {
    constexpr int kT = kPassTokens;
    const int8_t* qs[kT];
    for (int t = 0; t < kT; ++t) {
      qs[t] = LaneAuxEntry<PackedActQ4_1>(aux + t * aux_stride, entry_bytes, 0).qs;
    }
    alignas(32) __m256 dd[kMaxSpan][2][kT];  // [block - b0][half][token]
    for (int h = 0; h < 2; ++h) {
      for (int t = 0; t < kT; ++t) {
        __m256 m = facc[h][t].min;
        for (int64_t b = b0; b < b1; ++b) {
          const PackedActQ4_1& x = LaneAuxEntry<PackedActQ4_1>(aux + t * aux_stride, entry_bytes, b);
          dd[b - b0][h][t] = _mm256_mul_ps(HalfScales(blocks[b].d + 8 * h), _mm256_set1_ps(x.d));
          m = _mm256_add_ps(m,
                            _mm256_mul_ps(HalfScales(blocks[b].m + 8 * h), _mm256_set1_ps(x.s)));
        }
        facc[h][t].min = m;
      }
    }
    PassLanes<Q4_1Lanes>(blocks, b0, b1, qs, entry_bytes, dd, facc, prefetch);
  }

  // Pass's per-chunk operands: both halves' unpacked nibbles (chunk k % 4,
  // low for k < 4, else high).
  struct PassChunk {
    __m256i w[2];
  };
  static PassChunk LoadPassChunk(const Block* blk, int k) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    PassChunk c;
    for (int h = 0; h < 2; ++h) {
      const __m256i v = Load256(blk->qs[k % 4][8 * h]);
      c.w[h] = _mm256_and_si256(k < 4 ? v : _mm256_srli_epi16(v, 4), low);
    }
    return c;
  }
  static __m256i PassLaneSum(const PassChunk& c, int h, __m256i xa) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(c.w[h], xa), _mm256_set1_epi16(1));
  }
};

// The 8-lane types (Kind: Q8_0Lanes, Q4_1Lanes): spans of blocks small
// enough (~5-9 KB) to stay in L1 while every token of the call passes over
// them: Kind::Pass for kPassTokens tokens at a time, then Kind::Span for
// the remaining tokens, one token and one 8-row half at a time. Result per (row,
// token): ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)) [+ min].
template <typename Kind>
void LanePacked(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride,
                const uint8_t* aux, int64_t aux_stride, int nt, int64_t n, float* y,
                int64_t y_stride) {
  constexpr int64_t kSpan = 16;
  constexpr int kPass = Kind::kPassTokens;
  const typename Kind::Block* blocks = reinterpret_cast<const typename Kind::Block*>(group);
  const int64_t nb = n / Kind::kBlockElements;
  const int64_t entry_bytes = aux_stride / nb;  // LaneAuxEntry
  const int halves = nr > 8 ? 2 : 1;
  alignas(32) float out[8 * 16];
  for (int t0 = 0; t0 < nt; t0 += 16) {
    const int count = std::min(16, nt - t0);
    const int passed = count / kPass * kPass;
    LaneAcc facc[2][16];
    for (int h = 0; h < 2; ++h) {
      for (int t = 0; t < count; ++t) {
        for (int k = 0; k < 8; ++k) facc[h][t].lane[k] = _mm256_setzero_ps();
        facc[h][t].min = _mm256_setzero_ps();
      }
    }
    static_assert(kSpan <= Kind::kMaxSpan);
    for (int64_t b0 = 0; b0 < nb; b0 += kSpan) {
      const int64_t b1 = std::min(nb, b0 + kSpan);
      for (int t = 0; t < passed; t += kPass) {
        LaneAcc* const f[2] = {&facc[0][t], &facc[1][t]};
        Kind::Pass(blocks, b0, b1, a + (t0 + t) * a_stride, a_stride, aux + (t0 + t) * aux_stride,
                   aux_stride, entry_bytes, f, t == 0);
      }
    }
    for (int h = 0; h < halves && passed < count; ++h) {
      for (int64_t b0 = 0; b0 < nb; b0 += kSpan) {
        const int64_t b1 = std::min(nb, b0 + kSpan);
        for (int t = passed; t < count; ++t) {
          Kind::Span(blocks, h, b0, b1, a + (t0 + t) * a_stride, aux + (t0 + t) * aux_stride,
                     entry_bytes, &facc[h][t], t == 0 && h == 0);
        }
      }
    }
    for (int h = 0; h < halves; ++h) {
      for (int t = 0; t < count; ++t) {
        const __m256* f = facc[h][t].lane;
        __m256 sum =
            _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(f[0], f[4]), _mm256_add_ps(f[2], f[6])),
                          _mm256_add_ps(_mm256_add_ps(f[1], f[5]), _mm256_add_ps(f[3], f[7])));
        if constexpr (Kind::kMin) sum = _mm256_add_ps(sum, facc[h][t].min);
        _mm256_store_ps(out + 8 * t, sum);
      }
      const int nrh = std::min(8, nr - 8 * h);
      for (int t = 0; t < count; ++t) {
        for (int r = 0; r < nrh; ++r) y[(t0 + t) * y_stride + 8 * h + r] = out[8 * t + r];
      }
    }
  }
}

// Q4_K, T tokens (1..4) x one 16-row group, all super-blocks. As Q4_0Tile,
// each broadcast activation chunk feeds both 8-row halves and each unpacked
// weight chunk all T tokens; a sub-block pair is two passes (low nibbles,
// then high), each holding 2T i16 sums in registers. The integer sums, the
// float accumulators (acc, accm) and the low pass's scaled sums live in L1
// arrays (the stack: more than the 16 registers), touched once per
// sub-block pair. Rounding as the row-major kernels: kPairs = one fma per
// 64 elements (per pair c), else per 256.
template <int T, bool kPairs>
void Q4KTile(const uint8_t* group, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
             int64_t aux_stride, int64_t nb, float* out) {
  static_assert(T >= 1 && T <= 4);
  const __m256i low = _mm256_set1_epi8(0x0F);
  // [h][t]: rows 8h .. 8h+7 of token t.
  __m256 acc[2][T], accm[2][T];
  __m256i sumi[2][T], summ[2][T], slo[2][T];
  for (int h = 0; h < 2; ++h) {
    for (int t = 0; t < T; ++t) acc[h][t] = accm[h][t] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    const PackedQ4KBlock* blk = reinterpret_cast<const PackedQ4KBlock*>(group) + b;
    const int8_t* qa[T];
    const PackedActQ4K* x[T];
    for (int t = 0; t < T; ++t) {
      qa[t] = (reinterpret_cast<const BlockQ8_K*>(a + t * a_stride) + b)->qs;
      x[t] = reinterpret_cast<const PackedActQ4K*>(aux + t * aux_stride) + b;
      sumi[0][t] = sumi[1][t] = summ[0][t] = summ[1][t] = _mm256_setzero_si256();
    }
    for (int c = 0; c < 4; ++c) {
      // The next super-block, a quarter per sub-block pair (37 lines in all).
      const char* ahead = reinterpret_cast<const char*>(blk + 1) + c * 640;
      for (int l = 0; l < 10; ++l) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
      for (int pass = 0; pass < 2; ++pass) {  // 0: low nibbles (sub-block 2c), 1: high
        __m256i p[2][T];
        for (int t = 0; t < T; ++t) p[0][t] = p[1][t] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
          __m256i w0 = Load256(blk->qs[8 * c + k][0]), w1 = Load256(blk->qs[8 * c + k][8]);
          if (pass == 1) {
            w0 = _mm256_srli_epi16(w0, 4);
            w1 = _mm256_srli_epi16(w1, 4);
          }
          w0 = _mm256_and_si256(w0, low);
          w1 = _mm256_and_si256(w1, low);
          for (int t = 0; t < T; ++t) {
            const __m256i ac = Bcast4(qa[t] + 64 * c + 32 * pass + 4 * k);
            p[0][t] = _mm256_add_epi16(p[0][t], _mm256_maddubs_epi16(w0, ac));
            p[1][t] = _mm256_add_epi16(p[1][t], _mm256_maddubs_epi16(w1, ac));
          }
        }
        for (int h = 0; h < 2; ++h) {
          // Scale of row r in both i16 halves of lane r.
          __m256i sc = _mm256_cvtepu8_epi32(_mm_loadl_epi64(
              reinterpret_cast<const __m128i*>(blk->scales[2 * c + pass] + 8 * h)));
          sc = _mm256_or_si256(sc, _mm256_slli_epi32(sc, 16));
          for (int t = 0; t < T; ++t) {
            const __m256i s = _mm256_madd_epi16(p[h][t], sc);
            slo[h][t] = pass == 0 ? s : _mm256_add_epi32(slo[h][t], s);
          }
        }
      }
      for (int h = 0; h < 2; ++h) {
        const __m256i mins = _mm256_cvtepu8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->mins[c][8 * h])));
        for (int t = 0; t < T; ++t) {
          const __m256i m = _mm256_madd_epi16(mins, _mm256_set1_epi32(x[t]->bsum_pairs[c]));
          if constexpr (kPairs) {
            const __m256 da = _mm256_set1_ps(x[t]->d);
            acc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(slo[h][t]),
                                        _mm256_mul_ps(HalfScales(blk->d + 8 * h), da), acc[h][t]);
            accm[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m),
                                         _mm256_mul_ps(HalfScales(blk->dmin + 8 * h), da),
                                         accm[h][t]);
          } else {
            sumi[h][t] = _mm256_add_epi32(sumi[h][t], slo[h][t]);
            summ[h][t] = _mm256_add_epi32(summ[h][t], m);
          }
        }
      }
    }
    if constexpr (!kPairs) {
      for (int h = 0; h < 2; ++h) {
        const __m256 dw = HalfScales(blk->d + 8 * h);
        const __m256 dmw = HalfScales(blk->dmin + 8 * h);
        for (int t = 0; t < T; ++t) {
          const __m256 da = _mm256_set1_ps(x[t]->d);
          acc[h][t] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[h][t]), _mm256_mul_ps(dw, da), acc[h][t]);
          accm[h][t] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(summ[h][t]), _mm256_mul_ps(dmw, da), accm[h][t]);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < 2; ++h) {
      _mm256_storeu_ps(out + t * kPackRows + 8 * h, _mm256_sub_ps(acc[h][t], accm[h][t]));
    }
  }
}

using TileBody = void (*)(const uint8_t*, const uint8_t*, int64_t, const uint8_t*, int64_t, int64_t,
                          float*);

// Tiles of T tokens (bodies[T - 1]), then one tile of the remaining 1..T-1
// (bodies[remaining - 1]); every body computes each token alike.
template <int T>
void Tiles(const std::array<TileBody, T>& bodies, const uint8_t* group, int nr, const uint8_t* a,
           int64_t a_stride, const uint8_t* aux, int64_t aux_stride, int nt, int64_t nb, float* y,
           int64_t y_stride) {
  alignas(32) float out[T * kPackRows];
  for (int t = 0; t < nt; t += T) {
    const int count = std::min(T, nt - t);
    bodies[count - 1](group, a + t * a_stride, a_stride, aux + t * aux_stride, aux_stride, nb, out);
    StorePackedRows(out, count, nr, y + t * y_stride, y_stride);
  }
}

// One 16-token tile (nt in [1, 16]) from PackedActQ4_0Tile activations, in
// sub-tiles of up to 4 tokens. Against the earlier form, which read the
// Q8_0 and PackedActQ4_0 rows (AMD EPYC Zen 5, 2 vCPU, PHI3_KERNELS=avx2,
// phi3-bench q4_0, 2 threads, alternated pairs): tg128 ahead in 6 of 6
// (medians 14.5 -> 17.1 tok/s); pp512 (5 pairs, medians 54.5 vs 53.9) and
// parallel:16 (3 pairs, 48.3 vs 49.6) level.
void Q4_0Batch(const uint8_t* group, int nr, const uint8_t* act, int nt, int64_t nb, float* y,
               int64_t y_stride) {
  using Body = void (*)(const uint8_t*, const PackedActQ4_0Tile*, int64_t, float*);
  static constexpr std::array<Body, 4> kBodies{&Q4_0Tile<1>, &Q4_0Tile<2>, &Q4_0Tile<3>,
                                               &Q4_0Tile<4>};
  const auto* x = reinterpret_cast<const PackedActQ4_0Tile*>(act);
  alignas(32) float out[4 * kPackRows];
  for (int t = 0; t < nt; t += 4) {
    const int count = std::min(4, nt - t);
    kBodies[count - 1](group, x + t, nb, out);
    StorePackedRows(out, count, nr, y + t * y_stride, y_stride);
  }
}

template <bool kPairs>
void Q4KPacked(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
               int64_t aux_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  static constexpr std::array<TileBody, 4> kBodies{&Q4KTile<1, kPairs>, &Q4KTile<2, kPairs>,
                                                   &Q4KTile<3, kPairs>, &Q4KTile<4, kPairs>};
  Tiles<4>(kBodies, group, nr, a, a_stride, aux, aux_stride, nt, n / kQK_K, y, y_stride);
}

}  // namespace

const PackedKernels& Avx2PackedKernels() {
  static const PackedKernels k{.q4_0_batch = &Q4_0Batch,
                               .q4_1 = &LanePacked<Q4_1Lanes>,
                               .q8_0 = &LanePacked<Q8_0Lanes>,
                               .q4_k = &Q4KPacked<false>,
                               .q4_k_pairs = &Q4KPacked<true>,
                               .q5_k = Avx2PackedQ5K(),
                               .q6_k = Avx2PackedQ6K()};
  return k;
}

}  // namespace phi3::internal
