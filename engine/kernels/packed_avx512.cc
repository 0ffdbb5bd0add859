// AVX-512 (VNNI) kernels for the packed layouts: one zmm lane per row of a
// 16-row group, vpdpbusd of a 64-byte weight chunk (4 bytes per row) with a
// broadcast 4-byte activation chunk. Rounding per row as the row-major
// kernels (Q4_0 / Q4_K: simd_lane_ops.h, acc = fma(float(S_b), d_w * d_a,
// acc); Q8_0 / Q4_1: 8 lanes, see their packed blocks).
// Token tiles of 16, then one of the remaining 1..15, reuse each unpacked
// weight chunk; a token's arithmetic is the same in any tile (batch
// invariance).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/packed_internal.h"
#include "engine/kernels/quantize.h"

// GCC 12 warns inside its own AVX-512 conversion intrinsics (_mm512_undefined).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace phi3::internal {
namespace {

inline __m512i Bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}
inline __m512i Bcast4u(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// One token's share of a Q4_0 group-block: acc + float(S_b) * (d_w * d_a)
// in one fma, S_b the exact integer sum (two vpdpbusd chains, one seeded
// with neg_corr = -8 * sum(a)) of the unpacked chunks q with the token's
// quants qa.
inline __m512 Q4_0TokenBlock(const __m512i q[8], __m512 dw, const int8_t* qa, int32_t neg_corr,
                             float da, __m512 acc) {
  __m512i s0 = _mm512_dpbusd_epi32(_mm512_set1_epi32(neg_corr), q[0], Bcast4(qa));
  __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[1], Bcast4(qa + 16));
  s0 = _mm512_dpbusd_epi32(s0, q[2], Bcast4(qa + 4));
  s1 = _mm512_dpbusd_epi32(s1, q[3], Bcast4(qa + 20));
  s0 = _mm512_dpbusd_epi32(s0, q[4], Bcast4(qa + 8));
  s1 = _mm512_dpbusd_epi32(s1, q[5], Bcast4(qa + 24));
  s0 = _mm512_dpbusd_epi32(s0, q[6], Bcast4(qa + 12));
  s1 = _mm512_dpbusd_epi32(s1, q[7], Bcast4(qa + 28));
  const __m512i s = _mm512_add_epi32(s0, s1);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(da)), acc);
}

// Prefetches the 5 lines of group-block `ahead`, returns the scales of blk
// and unpacks its 4 chunks into q (low nibbles q[2c], high q[2c + 1]).
inline __m512 Q4_0LoadBlock(const PackedQ4_0Block* blk, const PackedQ4_0Block* ahead,
                            __m512i q[8]) {
  const char* p = reinterpret_cast<const char*>(ahead);
  for (int l = 0; l < 5; ++l) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int c = 0; c < 4; ++c) {
    const __m512i v = _mm512_loadu_si512(blk->qs[c]);
    q[2 * c] = _mm512_and_si512(v, low);
    q[2 * c + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
  }
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->d)));
}

// Blocks a batched Q4_0 pass prefetches ahead when it streams the group
// from DRAM (Q4_0Tile's first pass, every Q4_0BatchTile): Zen 5,
// kernels_bench q4_0 32064x3072, 16 tokens, 2 threads: 1204-1264 GFLOP/s
// against 1106-1163 with the 6 blocks Q4_0Tile's later passes use.
constexpr int kStreamingPrefetchBlocks = 16;

// T tokens (1..16) x one 16-row group, all blocks: each 64-byte weight
// chunk is loaded and unpacked once for all T tokens (the AMX kernels'
// fallback tiles, decode's single tokens among them; on this table every
// batch takes Q4_0BatchTile). Two
// vpdpbusd chains per token (one seeded with -8 * sum(a); int32 sums are
// exact in any order) and T accumulators + 8 unpacked chunks fit the 32 zmm
// registers. Measured on Zen 5 and not faster: one chain per token (in
// sub-tiles of 1, 2 or 4 tokens), a vpxord zero for the second chain, and
// vpdpbusd with an embedded {1to16} activation broadcast (that form issues
// ~3.5x slower there than vpbroadcastd + vpdpbusd). The next blocks are
// prefetched: the groups of a thread's range are contiguous, so this also
// runs ahead into the next group.
template <int T>
void Q4_0Tile(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
              int64_t aux_stride, int64_t nb, float* y, int64_t y_stride, bool first_pass) {
  static_assert(T >= 1 && T <= 16);
  // Decode (one token) streams from DRAM and gains from running further
  // ahead. Wider tiles: the first pass over the group streams it from DRAM
  // too (kStreamingPrefetchBlocks); later tiles of the same call find it in
  // L2, where 12+ blocks measured ~2% slower prompts.
  const int kPrefetchBlocks = T == 1 ? 12 : first_pass ? kStreamingPrefetchBlocks : 6;
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const PackedQ4_0Block* blocks = reinterpret_cast<const PackedQ4_0Block*>(group);
  for (int64_t b = 0; b < nb; ++b) {
    __m512i q[8];
    const __m512 dw = Q4_0LoadBlock(blocks + b, blocks + b + kPrefetchBlocks, q);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const int8_t* qa = (reinterpret_cast<const BlockQ8_0*>(a + t * a_stride) + b)->qs;
      const PackedActQ4_0& x = reinterpret_cast<const PackedActQ4_0*>(aux + t * aux_stride)[b];
      acc[t] = Q4_0TokenBlock(q, dw, qa, x.neg_corr, x.d, acc[t]);
    }
  }
  const __mmask16 rows = static_cast<__mmask16>((1u << nr) - 1);  // nr in [1, 16]
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * y_stride, rows, acc[t]);
}

// Q4_0Tile for a tile of T tokens (1..16) read from PackedActQ4_0Tile
// activations: one pointer per block and constant offsets per token, one
// array streamed. Q4_0Tile's two row pointers per token do not fit the 16
// general registers at T = 16 (GCC 12 reloads 22 from the stack per block)
// and it streams 2T arrays (AMD EPYC Zen 5, 2 vCPU, kernels_bench
// q4_0 16 tokens, three runs of 21 calls alternated with Q4_0Tile in one
// process: 32064x3072 1.15-1.19x on 1 thread, 1.05-1.14x on 2; 3072x8192
// 1.09-1.10x, 1.11x; 9216x3072 1.09-1.12x, 1.07-1.14x; 8 tokens
// 0.96-1.10x). Measured there and not kept: a tile walking 4 groups per span
// of 16 blocks, so that a span's activations stay in L1 while the groups
// pass (0.86-1.15x, median 0.97x), and one pass over two groups sharing each
// activation broadcast, accumulators in L1 (0.90-1.06x, median 1.02x). One
// pass over the group, prefetched kStreamingPrefetchBlocks ahead as
// Q4_0Tile's first pass (also in a prompt's later tiles, which find the
// group in L1/L2).
template <int T>
void Q4_0BatchTile(const uint8_t* group, int nr, const uint8_t* act, int64_t nb, float* y,
                   int64_t y_stride) {
  static_assert(T >= 1 && T <= 16);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const PackedQ4_0Block* blocks = reinterpret_cast<const PackedQ4_0Block*>(group);
  const PackedActQ4_0Tile* x = reinterpret_cast<const PackedActQ4_0Tile*>(act);
  for (int64_t b = 0; b < nb; ++b, x += kBatchTokens) {
    __m512i q[8];
    const __m512 dw = Q4_0LoadBlock(blocks + b, blocks + b + kStreamingPrefetchBlocks, q);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      acc[t] = Q4_0TokenBlock(q, dw, x[t].qs, x[t].neg_corr, x[t].d, acc[t]);
    }
  }
  const __mmask16 rows = static_cast<__mmask16>((1u << nr) - 1);  // nr in [1, 16]
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * y_stride, rows, acc[t]);
}

// Blocks per span of the 8-lane kinds (LanePacked): ~5-9 KB, small enough to
// stay in L1 while every sub-tile of a token tile passes over them.
constexpr int64_t kLaneSpan = 16;

// One token's accumulators in the 8-lane roundings (PackedQ8_0Block,
// PackedQ4_1Block): lane[k] holds lane k of the 16 rows; min is Q4_1's
// summs (unused for Q8_0).
struct LaneAcc {
  __m512 lane[8];
  __m512 min;
};

// How a sub-tile gets the span's per-chunk terms that depend on the weights
// only (Q8_0's seeds): the first sub-tile of a token tile computes them and,
// when later sub-tiles follow, keeps them in the span's scratch; those read
// them back from L1.
enum class SpanTerms { kCompute, kComputeAndKeep, kReuse };

// Q8_0, U tokens (1..3) x one 16-row group, blocks [b0, b1): the tokens' 8
// lane accumulators live in registers across the span and are loaded from /
// stored to facc at its ends. vpdpbusd takes the activations as unsigned
// a + 128 (PackedActQ8_0::qs128) and the weights as they are; the sum is
// seeded with -128 * sum(w) of the chunk (one vpdpbusd per weight chunk,
// shared by the U tokens), so it is the exact signed dot. The seeds are
// computed once per span and token tile (SpanTerms) and the later 3-token
// sub-tiles read them back from L1: a seed vpdpbusd per chunk in every
// sub-tile is one of its seven vpdpbusd / fma, which share two pipes on
// Zen 5, where a 64-byte load from L1 uses neither (AMD EPYC Zen 5, 2 vCPU,
// kernels_bench q8_0 32064x3072, 16 tokens, medians of 16 alternating runs:
// 1 thread 208 -> 220 GFLOP/s, 2 threads 384 -> 398). Seeding each token's
// sum with a broadcast -128 * sum(a) instead (weights xor 0x80) measured 228
// GFLOP/s on Zen 5 where the recomputed seed gave 341 (kernels_bench q8_0
// 3072x3072, 16 tokens, 1 thread), although the activation broadcasts alone
// measured free there in a Q4_K micro-loop. Measured and not faster: a
// lane-outer order (lane k of all 16 tokens in registers per pass over a
// staged span): the rounding's cvt + fma per vpdpbusd share the vector pipes
// whatever the loop order.
struct Q8_0Lanes {
  using Block = PackedQ8_0Block;
  static constexpr int64_t kBlockElements = kQK8_0;
  static constexpr bool kMin = false;
  static constexpr bool kSpanTerms = true;
  // A span's seeds: [kLaneSpan blocks][8 chunks] x 16 rows int32, 8 KB
  // (stays in L1 beside the span's ~8.5 KB of weights).
  struct SpanScratch {
    __m512i seed[kLaneSpan][8];
  };

  template <int U, SpanTerms kTerms>
  static void Span(const Block* blocks, int64_t b0, int64_t b1, const uint8_t* a,
                   int64_t a_stride, const uint8_t* aux, int64_t aux_stride, int64_t entry_bytes,
                   LaneAcc* facc, int share, int shares, SpanScratch* scratch) {
    static_assert(U >= 1 && U <= 3);
    // Blocks ahead, into L1 (decode streams the group once, front to back;
    // a thread's groups are contiguous, so this also runs into the next
    // one). With 3+ tokens the first sub-tile runs through the span quickly
    // and the later ones re-read it from L1, so it fetches the whole next
    // span (kLaneSpan blocks): Zen 5, phi3-bench parallel:16 (Q8_0, 2 threads)
    // 54.6 -> 70.5 tok/s with the seed above, where 4 blocks ahead left the
    // first sub-tile waiting on DRAM. Every 3-token sub-tile of a tile
    // prefetches a share of it (every shares-th block) rather than the first
    // all of it: perf had the first sub-tile at ~2.4x a later one's time
    // (AMD EPYC Zen 5, 2 vCPU, parallel:16 Q8_0 2 threads 41.5 -> 54.1
    // tok/s, medians of 3). One token (decode) runs further
    // ahead, 8 blocks (4.4 KB): Zen 5, one thread, a Q8_0 Phi-3-mini decode
    // step's matmuls alternated in one process with read passes, share of
    // the same seconds' read bandwidth: 4 blocks 92.5%, 8 97.1%, 12 95.1%,
    // 16 96.3%, 24 93.0%; 2 threads 87.7% (4) vs 90.4% (8). Two tokens keep
    // the 4 they were measured with.
    constexpr int kPrefetchBlocks = U == 3 ? kLaneSpan : U == 2 ? 4 : 8;
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
    __m512 acc[U][8];
    for (int u = 0; u < U; ++u) {
      for (int k = 0; k < 8; ++k) acc[u][k] = facc[u].lane[k];
    }
    for (int64_t b = b0; b < b1; ++b) {
      const Block* blk = blocks + b;
      if (shares > 0 && (b - b0) % shares == share) {
        const char* ahead = reinterpret_cast<const char*>(blk + kPrefetchBlocks);
        for (int l = 0; l < 9; ++l) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
      }
      const __m512 dw =
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->d)));
      const PackedActQ8_0* x[U];
      __m512 dd[U];
      for (int u = 0; u < U; ++u) {
        x[u] = &LaneAuxEntry<PackedActQ8_0>(aux + u * aux_stride, entry_bytes, b);
        dd[u] = _mm512_mul_ps(dw, _mm512_set1_ps(x[u]->d));
      }
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) {
        // The chunk and its seed stay in registers for the U tokens (the
        // empty asm): GCC otherwise folds the chunk into each token's
        // vpdpbusd as a memory operand and reloads a reused seed per token,
        // three loads per token and chunk.
        __m512i w = _mm512_loadu_si512(blk->qs[k]);
        asm("" : "+v"(w));
        // -128 * sum(w) per row: the seed that makes sum((a + 128) * w) the
        // exact dot, shared by the U tokens.
        __m512i seed;
        if constexpr (kTerms == SpanTerms::kReuse) {
          seed = _mm512_load_si512(&scratch->seed[b - b0][k]);
          asm("" : "+v"(seed));
        } else {
          seed = _mm512_sub_epi32(_mm512_setzero_si512(),
                                  _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, w));
          if constexpr (kTerms == SpanTerms::kComputeAndKeep) {
            _mm512_store_si512(&scratch->seed[b - b0][k], seed);
          }
        }
        for (int u = 0; u < U; ++u) {
          const __m512i s = _mm512_dpbusd_epi32(seed, Bcast4u(x[u]->qs128 + 4 * k), w);
          acc[u][k] = _mm512_fmadd_ps(dd[u], _mm512_cvtepi32_ps(s), acc[u][k]);
        }
      }
    }
    for (int u = 0; u < U; ++u) {
      for (int k = 0; k < 8; ++k) facc[u].lane[k] = acc[u][k];
    }
  }
};

// Q4_1, as Q8_0Lanes: chunk k % 4's low (k < 4) or high nibbles are lane
// k's weights, unsigned as vpdpbusd takes them; a block's activations
// (quants, d, s) from its PackedActQ4_1 entry. The min term is a second
// pass over the span (its blocks are in L1 by then), so the lane loop keeps
// the register file to itself.
struct Q4_1Lanes {
  using Block = PackedQ4_1Block;
  static constexpr int64_t kBlockElements = kQK4_1;
  static constexpr bool kMin = true;
  static constexpr bool kSpanTerms = false;  // nothing to share between sub-tiles
  struct SpanScratch {};

  template <int U, SpanTerms>
  static void Span(const Block* blocks, int64_t b0, int64_t b1, const uint8_t* a,
                   int64_t a_stride, const uint8_t* aux, int64_t aux_stride, int64_t entry_bytes,
                   LaneAcc* facc, int share, int shares, SpanScratch*) {
    static_assert(U >= 1 && U <= 3);
    // One token (decode): 24 blocks (7.7 KB) ahead. Zen 5, one thread, a
    // Q4_1 Phi-3-mini decode step's matmuls alternated in one process with
    // read passes, share of the same seconds' read bandwidth: 12 blocks
    // 87.9%, 20 93.5%, 24 93.8%, 32 92.9%; 2 threads 85.1% (12) vs 86.7%
    // (24). Two tokens keep the earlier 12 blocks (3.8 KB; 6 had measured
    // slower from DRAM). With 3+ tokens the next span, as Q8_0Lanes (Zen 5,
    // parallel:16 Q4_1, 2 threads: 72.0 -> 84.2 tok/s, medians of 3),
    // every 3-token sub-tile a share of it as there (48.4 -> 56.0 tok/s,
    // medians of 3 alternating runs on a slower day).
    constexpr int kPrefetchBlocks = U == 3 ? kLaneSpan : U == 2 ? 12 : 24;
    const __m512i low = _mm512_set1_epi8(0x0F);
    __m512 acc[U][8];
    for (int u = 0; u < U; ++u) {
      for (int k = 0; k < 8; ++k) acc[u][k] = facc[u].lane[k];
    }
    for (int64_t b = b0; b < b1; ++b) {
      const Block* blk = blocks + b;
      if (shares > 0 && (b - b0) % shares == share) {
        const char* ahead = reinterpret_cast<const char*>(blk + kPrefetchBlocks);
        for (int l = 0; l < 5; ++l) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
      }
      const __m512 dw =
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->d)));
      const int8_t* qa[U];
      __m512 dd[U];
      for (int u = 0; u < U; ++u) {
        const PackedActQ4_1& x = LaneAuxEntry<PackedActQ4_1>(aux + u * aux_stride, entry_bytes, b);
        qa[u] = x.qs;
        dd[u] = _mm512_mul_ps(dw, _mm512_set1_ps(x.d));
      }
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) {
        const __m512i v = _mm512_loadu_si512(blk->qs[k % 4]);
        const __m512i w = _mm512_and_si512(k < 4 ? v : _mm512_srli_epi16(v, 4), low);
        for (int u = 0; u < U; ++u) {
          const __m512i s =
              _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, Bcast4(qa[u] + 4 * k));
          acc[u][k] = _mm512_fmadd_ps(dd[u], _mm512_cvtepi32_ps(s), acc[u][k]);
        }
      }
    }
    __m512 m[U];
    for (int u = 0; u < U; ++u) {
      for (int k = 0; k < 8; ++k) facc[u].lane[k] = acc[u][k];
      m[u] = facc[u].min;
    }
    for (int64_t b = b0; b < b1; ++b) {
      const __m512 mw =
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[b].m)));
      for (int u = 0; u < U; ++u) {
        const float sa = LaneAuxEntry<PackedActQ4_1>(aux + u * aux_stride, entry_bytes, b).s;
        m[u] = _mm512_add_ps(m[u], _mm512_mul_ps(mw, _mm512_set1_ps(sa)));
      }
    }
    for (int u = 0; u < U; ++u) facc[u].min = m[u];
  }
};

// The 8-lane types (Kind: Q8_0Lanes, Q4_1Lanes), tiles of up to 16 tokens
// x one group: spans of blocks small enough (~5-9 KB) to stay in L1 while
// every 3-token sub-tile of the tile passes over them. Result per (row,
// token): ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)) [+ min].
template <typename Kind>
void LanePacked(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride,
                const uint8_t* aux, int64_t aux_stride, int nt, int64_t n, float* y,
                int64_t y_stride) {
  const typename Kind::Block* blocks = reinterpret_cast<const typename Kind::Block*>(group);
  const int64_t nb = n / Kind::kBlockElements;
  const int64_t entry_bytes = aux_stride / nb;  // LaneAuxEntry
  const __mmask16 rows = static_cast<__mmask16>((1u << nr) - 1);  // nr in [1, 16]
  typename Kind::SpanScratch scratch;
  for (int t0 = 0; t0 < nt; t0 += 16) {
    const int count = std::min(16, nt - t0);
    LaneAcc facc[16];
    for (int t = 0; t < count; ++t) {
      for (int k = 0; k < 8; ++k) facc[t].lane[k] = _mm512_setzero_ps();
      facc[t].min = _mm512_setzero_ps();
    }
    for (int64_t b0 = 0; b0 < nb; b0 += kLaneSpan) {
      const int64_t b1 = std::min(nb, b0 + kLaneSpan);
      for (int t = 0; t < count;) {
        const uint8_t* at = a + (t0 + t) * a_stride;
        const uint8_t* xt = aux + (t0 + t) * aux_stride;
        const int u = std::min(3, count - t);
        auto span = [&]<int U>() {
          auto run = [&]<SpanTerms kTerms>() {
            // Every 3-token sub-tile prefetches every shares-th block of
            // the next span (Span); a tile of one or two tokens all of it.
            const int shares = count < 3 ? (t == 0) : (U == 3 ? count / 3 : 0);
            Kind::template Span<U, kTerms>(blocks, b0, b1, at, a_stride, xt, aux_stride,
                                           entry_bytes, facc + t, t / 3, shares, &scratch);
          };
          if constexpr (!Kind::kSpanTerms) {
            run.template operator()<SpanTerms::kCompute>();
          } else if (t == 0 && count == U) {
            run.template operator()<SpanTerms::kCompute>();
          } else if (t == 0) {
            run.template operator()<SpanTerms::kComputeAndKeep>();
          } else {
            run.template operator()<SpanTerms::kReuse>();
          }
        };
        if (u == 3) {
          span.template operator()<3>();
        } else if (u == 2) {
          span.template operator()<2>();
        } else {
          span.template operator()<1>();
        }
        t += u;
      }
    }
    for (int t = 0; t < count; ++t) {
      const __m512* f = facc[t].lane;
      __m512 sum =
          _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(f[0], f[4]), _mm512_add_ps(f[2], f[6])),
                        _mm512_add_ps(_mm512_add_ps(f[1], f[5]), _mm512_add_ps(f[3], f[7])));
      if constexpr (Kind::kMin) sum = _mm512_add_ps(sum, facc[t].min);
      _mm512_mask_storeu_ps(y + (t0 + t) * y_stride, rows, sum);
    }
  }
}

// Q4_K, T tokens (1..16) x one 16-row group: each super-block's 64-byte
// chunks are loaded and unpacked once for all T tokens (one pass over the
// weights per decode step of up to 16 sequences). The 16 unpacked chunks of
// a sub-block pair stay in registers; the per-token integer sums and float
// accumulators live in L1 (too many for the register file at T = 16).
// Rounding as Q4KTile: kPairs = one fma per 64 elements, else per 256.
template <int T, bool kPairs>
void Q4KTileN(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
              int64_t aux_stride, int64_t nb, float* y, int64_t y_stride) {
  static_assert(T >= 1 && T <= 16);
  const __m512i low = _mm512_set1_epi8(0x0F);
  // [T][16] each; explicit memory (the register file holds the chunks).
  alignas(64) float acc[T][kPackRows], accm[T][kPackRows];
  alignas(64) int32_t sumi[T][kPackRows];
  for (int t = 0; t < T; ++t) {
    _mm512_store_ps(acc[t], _mm512_setzero_ps());
    _mm512_store_ps(accm[t], _mm512_setzero_ps());
  }
  // Super-blocks prefetched ahead, a quarter per sub-block pair (37 lines
  // each). Decode (one token) streams from DRAM and gains from running
  // further ahead: 4 (~9.5 KB) gave Q4_K_M tg128 14.45-14.60 tok/s on one
  // Zen 5 thread where 1 gave 14.19-14.20. Wider tiles spend longer on each
  // super-block (~0.2 us at 16 tokens), yet one ahead still left them
  // waiting on DRAM: 2 ahead, one group of 16 rows after another from
  // memory, 2 threads, Zen 5 (medians of 5-7 alternating runs): 16 tokens
  // +4-11%, 4 tokens +18%, prompt tiles (pairs rounding) +2%; 3 and 4 ahead
  // were no better than 2, 6 worse.
  constexpr int kAheadBlocks = T == 1 ? 4 : 2;
  const PackedQ4KBlock* blocks = reinterpret_cast<const PackedQ4KBlock*>(group);
  for (int64_t b = 0; b < nb; ++b) {
    const PackedQ4KBlock* blk = blocks + b;
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->d)));
    const __m512 dmw =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->dmin)));
    for (int t = 0; t < T; ++t) _mm512_store_si512(sumi[t], _mm512_setzero_si512());
    for (int c = 0; c < 4; ++c) {
      const char* ahead = reinterpret_cast<const char*>(blk + kAheadBlocks) + c * 640;
      for (int l = 0; l < 10; ++l) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
      __m512i lo[8], hi[8];
      for (int k = 0; k < 8; ++k) {
        const __m512i v = _mm512_loadu_si512(blk->qs[8 * c + k]);
        lo[k] = _mm512_and_si512(v, low);
        hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      }
      const __m512i sc_lo = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales[2 * c])));
      const __m512i sc_hi = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales[2 * c + 1])));
      // Sub-tiles of up to 4 tokens interleave 8 independent vpdpbusd
      // chains (one chain per token would leave the FP scheduler waiting).
      auto sums = [&]<int U>(int t0) {
        __m512i dlo[U], dhi[U];
        const int8_t* qa[U];
        for (int u = 0; u < U; ++u) {
          qa[u] = (reinterpret_cast<const BlockQ8_K*>(a + (t0 + u) * a_stride) + b)->qs + 64 * c;
          dlo[u] = dhi[u] = _mm512_setzero_si512();
        }
        for (int k = 0; k < 8; ++k) {
          for (int u = 0; u < U; ++u) {
            dlo[u] = _mm512_dpbusd_epi32(dlo[u], lo[k], Bcast4(qa[u] + 4 * k));
            dhi[u] = _mm512_dpbusd_epi32(dhi[u], hi[k], Bcast4(qa[u] + 32 + 4 * k));
          }
        }
        for (int u = 0; u < U; ++u) {
          const int t = t0 + u;
          const __m512i s = _mm512_add_epi32(_mm512_mullo_epi32(dlo[u], sc_lo),
                                             _mm512_mullo_epi32(dhi[u], sc_hi));
        if constexpr (kPairs) {
          const PackedActQ4K& x = reinterpret_cast<const PackedActQ4K*>(aux + t * aux_stride)[b];
          const __m512i mins = _mm512_cvtepu8_epi16(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->mins[c])));
          const __m512i m = _mm512_madd_epi16(mins, _mm512_set1_epi32(x.bsum_pairs[c]));
          const __m512 da = _mm512_set1_ps(x.d);
          _mm512_store_ps(acc[t], _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, da),
                                                  _mm512_load_ps(acc[t])));
          _mm512_store_ps(accm[t], _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmw, da),
                                                   _mm512_load_ps(accm[t])));
        } else {
          _mm512_store_si512(sumi[t], _mm512_add_epi32(_mm512_load_si512(sumi[t]), s));
        }
        }
      };
      int t = 0;
      for (; t + 4 <= T; t += 4) sums.template operator()<4>(t);
      for (; t < T; ++t) sums.template operator()<1>(t);
    }
    if constexpr (!kPairs) {
      __m512i mins[4];
      for (int p = 0; p < 4; ++p) {
        mins[p] = _mm512_cvtepu8_epi16(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->mins[p])));
      }
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        const PackedActQ4K& x = reinterpret_cast<const PackedActQ4K*>(aux + t * aux_stride)[b];
        __m512i m = _mm512_madd_epi16(mins[0], _mm512_set1_epi32(x.bsum_pairs[0]));
        for (int p = 1; p < 4; ++p) {
          m = _mm512_add_epi32(m, _mm512_madd_epi16(mins[p], _mm512_set1_epi32(x.bsum_pairs[p])));
        }
        const __m512 da = _mm512_set1_ps(x.d);
        _mm512_store_ps(acc[t], _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sumi[t])),
                                                _mm512_mul_ps(dw, da), _mm512_load_ps(acc[t])));
        _mm512_store_ps(accm[t], _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmw, da),
                                                 _mm512_load_ps(accm[t])));
      }
    }
  }
  const __mmask16 rows = static_cast<__mmask16>((1u << nr) - 1);  // nr in [1, 16]
  for (int t = 0; t < T; ++t) {
    _mm512_mask_storeu_ps(y + t * y_stride, rows,
                          _mm512_sub_ps(_mm512_load_ps(acc[t]), _mm512_load_ps(accm[t])));
  }
}

using TileFn = void (*)(const uint8_t*, int, const uint8_t*, int64_t, const uint8_t*, int64_t,
                           int64_t, float*, int64_t);
using Q4_0TileFn = void (*)(const uint8_t*, int, const uint8_t*, int64_t, const uint8_t*, int64_t,
                            int64_t, float*, int64_t, bool);

template <int... T>
constexpr std::array<Q4_0TileFn, sizeof...(T)> Q4_0TileTable(std::integer_sequence<int, T...>) {
  return {&Q4_0Tile<T + 1>...};
}

// Tiles of 16 tokens, then one tile of the remaining 1..15.
void Q4_0Packed(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride,
                const uint8_t* aux, int64_t aux_stride, int nt, int64_t n, float* y,
                int64_t y_stride) {
  static constexpr auto kTiles = Q4_0TileTable(std::make_integer_sequence<int, 16>());
  const int64_t nb = n / kQK4_0;
  for (int t = 0; t < nt; t += 16) {
    const int count = std::min(16, nt - t);
    kTiles[count - 1](group, nr, a + t * a_stride, a_stride, aux + t * aux_stride, aux_stride, nb,
                      y + t * y_stride, y_stride, t == 0);
  }
}

using Q4_0BatchTileFn = void (*)(const uint8_t*, int, const uint8_t*, int64_t, float*, int64_t);

template <int... T>
constexpr std::array<Q4_0BatchTileFn, sizeof...(T)> Q4_0BatchTable(
    std::integer_sequence<int, T...>) {
  return {&Q4_0BatchTile<T + 1>...};
}

void Q4_0Batch(const uint8_t* group, int nr, const uint8_t* act, int nt, int64_t nb, float* y,
               int64_t y_stride) {
  static constexpr auto kTiles = Q4_0BatchTable(std::make_integer_sequence<int, 16>());
  kTiles[nt - 1](group, nr, act, nb, y, y_stride);
}

template <bool kPairs, int... T>
constexpr std::array<TileFn, sizeof...(T)> Q4KTileTable(std::integer_sequence<int, T...>) {
  return {&Q4KTileN<T + 1, kPairs>...};
}

template <bool kPairs>
void Q4KPacked(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
               int64_t aux_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  static constexpr auto kTiles = Q4KTileTable<kPairs>(std::make_integer_sequence<int, 16>());
  const int64_t nb = n / kQK_K;
  for (int t = 0; t < nt; t += 16) {
    const int count = std::min(16, nt - t);
    kTiles[count - 1](group, nr, a + t * a_stride, a_stride, aux + t * aux_stride, aux_stride, nb,
                      y + t * y_stride, y_stride);
  }
}

}  // namespace

const PackedKernels& Avx512PackedKernels() {
  static const PackedKernels k{.q4_0 = &Q4_0Packed,
                               .q4_0_batch = &Q4_0Batch,
                               .q4_1 = &LanePacked<Q4_1Lanes>,
                               .q8_0 = &LanePacked<Q8_0Lanes>,
                               .q4_k = &Q4KPacked<false>,
                               .q4_k_pairs = &Q4KPacked<true>,
                               .q5_k = Avx512PackedQ5K(CpuIsAmdFamily1AhOrLater()),
                               .q6_k = Avx512PackedQ6K(CpuIsAmdFamily1AhOrLater()),
                               // Up to one 3-token sub-tile (LanePacked), whose
                               // pass streams the weights from DRAM. Zen 5,
                               // 2 threads, 3 tokens, GB/s packed -> 128 apart
                               // (as in packed_internal.h): Q8_0 16384x3072
                               // 45.5 -> 50.3, 3072x8192 41.2 -> 45.6; Q4_1
                               // 34.2 -> 34.6, 40.8 -> 42.3. Decode, phi3-bench
                               // tg128, 4 pairs in both orders, medians: Q8_0
                               // 8.18 -> 10.0 tok/s, Q4_1 12.67 -> 14.12.
                               .lane_aux_line_tokens = 3};
  return k;
}

}  // namespace phi3::internal
