// Batched decode of the float weight types (F16, BF16) with AVX-512, one
// accumulator split at a time. Part of the x86 SIMD kernels: included only
// by simd_f16_ops.h and simd_bf16_ops.h, inside the anonymous namespace of
// each per-ISA translation unit.
//
// The decode orders of those types (ggml_vec_dot_f16, ggml_vec_dot_bf16)
// keep kSplits accumulators per (row, token): split j takes the kWidth
// elements at 64i + kWidth * j of every 64-element step i, in order of i,
// independently of the other splits. So a tile may run the splits one after
// the other with R * T accumulators in registers instead of kSplits * R * T,
// and 4 rows x 4 tokens share their loads where VecTileInDecodeOrder's
// 3 x 2 tiles must hold all splits at once. A row group's accumulators of
// all tokens wait in a scratch between k-chunks (a store and reload are
// exact); the final reduction is the one-token kernel's. Same bits as the
// one-token dot at every token count (dot_test pins it). Within a chunk the
// loop runs token tiles outside and row tiles inside, so one 4-token tile
// of activations (which live in L2) serves all of a group's rows.
//
// Measured on Zen 5 (kernels_bench, 8192x3072, 16 tokens, best of 5
// repetitions, alternating runs): F16 146-151 vs 121-125 GFLOP/s on one
// thread, 266-303 vs 219-241 on two; BF16 on vdpbf16ps 170-172 vs 113-114
// and 323-351 vs 222-227. Two tokens gain nothing (pairs keep
// VecTileInDecodeOrder); three do.
#ifndef PHI3_ENGINE_KERNELS_SIMD_SPLIT_TILE_H_
#define PHI3_ENGINE_KERNELS_SIMD_SPLIT_TILE_H_

#include <algorithm>
#include <vector>

#include "engine/kernels/simd_common.h"
#include "engine/kernels/simd_v16.h"

namespace phi3::internal {
namespace {

#if defined(PHI3_WIDE_REGISTERS)
// 16 accumulators and 4 + 1 operand zmm registers (8 + 2 where BF16 is
// widened to f32 for want of vdpbf16ps).
inline constexpr int kSplitRows = 4, kSplitTokens = 4;
// Elements per k-chunk (a multiple of 64): the row group's chunk is read
// from DRAM once and then from L1 by every pass. 1024 measured faster than
// 512 (F16, 8 tokens, 2 threads: 270-279 vs 204-229 GFLOP/s), 256, 1536
// and 2048.
inline constexpr int64_t kSplitChunk = 1024;
// Token counts from which the float decode tiles run by splits.
inline constexpr int kSplitMinTokens = 3;

// `Split` describes one type's decode order for 2-byte elements:
//   kSplits, kWidth           as above (kSplits * kWidth == 64);
//   kGroupRows                rows (a multiple of kSplitRows) whose split
//                             accumulators wait in the scratch together:
//                             per chunk, each 4-token tile of activations
//                             runs over the whole group (read once from
//                             L2, reused from L1 by the group's
//                             kSplitRows-row tiles);
//   kPrefetchHint             _MM_HINT_T0 / _MM_HINT_T1 for the next chunk;
//   Operand Load(row, i)      elements [i, i + kWidth) of a row;
//   V16 Step(acc, w, a)       acc plus the products of those elements;
//   float Finish(acc, w_row, a_row, n)
//                             the result from the kSplits accumulators
//                             (elements [0, n & ~63)) and the n % 64 tail.

// Elements [k0, k1) (multiples of 64) of an R x T tile into its split
// accumulators part[(t * kGroupRows + r) * kSplits + j]. If kPrefetch,
// the passes prefetch the rows' next chunk (hint Split::kPrefetchHint), row
// r at next + r * w_stride, two lines of one row per step: a whole chunk at
// once measured ~20% slower.
template <typename Split, int R, int T, bool kPrefetch>
void SplitPasses(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride,
                 int64_t k0, int64_t k1, const uint8_t* next, V16* part) {
  constexpr int S = Split::kSplits, W = Split::kWidth;
  for (int j = 0; j < S; ++j) {
    V16 acc[R][T];
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) acc[r][t] = part[(t * Split::kGroupRows + r) * S + j];
    }
    for (int64_t i = k0 + W * j; i < k1; i += 64) {
      if constexpr (kPrefetch) {
        for (int r = j; r < R; r += S) {
          const char* p = reinterpret_cast<const char*>(next + r * w_stride + 2 * (i - W * j - k0));
          _mm_prefetch(p, Split::kPrefetchHint);
          _mm_prefetch(p + 64, Split::kPrefetchHint);
        }
      }
      typename Split::Operand wv[R];
      for (int r = 0; r < R; ++r) wv[r] = Split::Load(w + r * w_stride, i);
      for (int t = 0; t < T; ++t) {
        const typename Split::Operand av = Split::Load(a + t * a_stride, i);
        for (int r = 0; r < R; ++r) acc[r][t] = Split::Step(acc[r][t], wv[r], av);
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) part[(t * Split::kGroupRows + r) * S + j] = acc[r][t];
    }
  }
}

// T tokens of `rows` rows over [k0, k1): kSplitRows rows at a time, then
// one at a time; the rows' next chunk prefetched if kPrefetch (the first
// token tile of each chunk).
template <typename Split, int T, bool kPrefetch>
void SplitRows(const uint8_t* w, int64_t w_stride, int rows, const uint8_t* a, int64_t a_stride,
               int64_t k0, int64_t k1, const uint8_t* next, V16* part) {
  constexpr int S = Split::kSplits;
  int r = 0;
  for (; r + kSplitRows <= rows; r += kSplitRows) {
    SplitPasses<Split, kSplitRows, T, kPrefetch>(w + r * w_stride, w_stride, a, a_stride, k0, k1,
                                                 next + r * w_stride, part + r * S);
  }
  for (; r < rows; ++r) {
    SplitPasses<Split, 1, T, kPrefetch>(w + r * w_stride, w_stride, a, a_stride, k0, k1,
                                        next + r * w_stride, part + r * S);
  }
}

template <typename Split, int T>
void SplitRowsTokens(bool prefetch, const uint8_t* w, int64_t w_stride, int rows,
                     const uint8_t* a, int64_t a_stride, int64_t k0, int64_t k1,
                     const uint8_t* next, V16* part) {
  if (prefetch) {
    SplitRows<Split, T, true>(w, w_stride, rows, a, a_stride, k0, k1, next, part);
  } else {
    SplitRows<Split, T, false>(w, w_stride, rows, a, a_stride, k0, k1, next, part);
  }
}

// y[t * y_stride + r] = Split's decode-order dot of row r and token t, for
// nr rows (w_stride bytes apart) and nt tokens (a_stride bytes apart).
template <typename Split>
void SplitTileInDecodeOrder(const uint8_t* w, int64_t w_stride, int nr, const uint8_t* a,
                            int64_t a_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  constexpr int G = Split::kGroupRows, S = Split::kSplits, kPartToken = G * S;
  thread_local std::vector<V16> scratch;  // [nt][G][S]: one row group's accumulators
  const size_t part_size = static_cast<size_t>(nt) * kPartToken;
  if (scratch.size() < part_size) scratch.resize(part_size);
  V16* part = scratch.data();
  const int64_t np = n & ~int64_t{63};
  for (int r0 = 0; r0 < nr; r0 += G) {
    const int rows = std::min(G, nr - r0);
    const uint8_t* wg = w + r0 * w_stride;
    std::fill(part, part + part_size, V16Zero());
    for (int64_t k0 = 0; k0 < np; k0 += kSplitChunk) {
      const int64_t k1 = std::min(k0 + kSplitChunk, np);
      // The group's next chunk, else the next group's first (past the
      // tile's last row it prefetches rows a caller may read next; a
      // prefetch never faults).
      const uint8_t* next = k1 < np ? wg + 2 * k1 : wg + G * w_stride;
      int t = 0;
      for (; t + kSplitTokens <= nt; t += kSplitTokens) {
        SplitRowsTokens<Split, kSplitTokens>(t == 0, wg, w_stride, rows, a + t * a_stride,
                                             a_stride, k0, k1, next, part + t * kPartToken);
      }
      const bool pf = t == 0;
      const uint8_t* at = a + t * a_stride;
      V16* pt = part + t * kPartToken;
      switch (nt - t) {
        case 3:
          SplitRowsTokens<Split, 3>(pf, wg, w_stride, rows, at, a_stride, k0, k1, next, pt);
          break;
        case 2:
          SplitRowsTokens<Split, 2>(pf, wg, w_stride, rows, at, a_stride, k0, k1, next, pt);
          break;
        case 1:
          SplitRowsTokens<Split, 1>(pf, wg, w_stride, rows, at, a_stride, k0, k1, next, pt);
          break;
        default:
          break;
      }
    }
    for (int r = 0; r < rows; ++r) {
      for (int t = 0; t < nt; ++t) {
        y[t * y_stride + r0 + r] =
            Split::Finish(part + (t * G + r) * S, wg + r * w_stride, a + t * a_stride, n);
      }
    }
  }
}
#endif  // PHI3_WIDE_REGISTERS

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_SIMD_SPLIT_TILE_H_
