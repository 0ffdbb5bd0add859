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
// and 4 rows x 4-6 tokens share their loads where VecTileInDecodeOrder's
// 3 x 2 tiles must hold all splits at once. A row group's accumulators of
// all tokens wait in a scratch between k-chunks (a store and reload are
// exact); the final reduction is the one-token kernel's. Same bits as the
// one-token dot at every token count (dot_test pins it). Within a chunk the
// loop runs token tiles outside and row tiles inside, so one token tile
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
// Rows per tile; the tokens per tile are the type's (Split::kTileTokens).
inline constexpr int kSplitRows = 4;
// Token counts from which the float decode tiles run by splits.
inline constexpr int kSplitMinTokens = 3;

// `Split` describes one type's decode order for 2-byte elements:
//   kSplits, kWidth           as above (kSplits * kWidth == 64);
//   kGroupRows                rows (a multiple of kSplitRows) whose split
//                             accumulators wait in the scratch together:
//                             per chunk, each token tile of activations
//                             runs over the whole group (read once from
//                             L2, reused from L1 by the group's
//                             kSplitRows-row tiles);
//   kChunk                    elements per k-chunk (a multiple of 64):
//                             the group's chunk is read from DRAM once
//                             and then from L1 by every pass;
//   kTileTokens               tokens per tile: kSplitRows * kTileTokens
//                             accumulators and the operands fit the 32
//                             zmm registers;
//   kPrefetchAhead            how many chunks ahead (in the order group,
//                             chunk) the passes prefetch into L1;
//   kPrefetchByRow            how a pass issues its share of that chunk
//                             (SplitPasses): one line of each row per step
//                             if true, else spread evenly over its steps;
//   Operand Load(row, i)      elements [i, i + kWidth) of a row;
//   V16 Step(acc, w, a)       acc plus the products of those elements;
//   float Finish(acc, w_row, a_row, n)
//                             the result from the kSplits accumulators
//                             (elements [0, n & ~63)) and the n % 64 tail;
//   void FinishSixteen(part, out)
//                             out[k] = Finish(part + k * kSplits, ...) for
//                             k < 16 where n % 64 == 0 (no tail), in vector
//                             form (V16Sums), bit for bit.

// Lines [line_begin, line_end) (64 bytes each) of the rows of a pass at
// `base`, w_stride apart: the pass's share of a later chunk to prefetch.
struct SplitPrefetch {
  const uint8_t* base;
  int line_begin, line_end;
};

// Elements [k0, k1) (multiples of 64) of an R x T tile into its split
// accumulators part[(t * kGroupRows + r) * kSplits + j], which start from
// zero if `first`, else from part. The pass prefetches pf's lines of its R
// rows into L1 over its steps, so every token tile of a chunk issues a
// share of the chunk ahead. Issuing a whole chunk in the first token tile's
// passes left that tile ~4x slower than the others (perf, cpu-clock) and
// measured 15-20% slower overall (Zen 5, kernels_bench bf16 and f16,
// 32064x3072, 16 tokens, 1-2 threads); the L2 hint measured no better than
// L1 once spread. Split::kPrefetchByRow picks how: one line of each of the
// R rows per step over the first steps, addressed from the rows' load
// pointers plus one offset, or ceil(R * lines / steps) lines per step
// walking the rows one line at a time (its cursor and row wrap live in
// registers the row-wise form leaves to the loads). The row-wise form
// issues at most one line per row per step, so a share longer than the
// pass's steps is cut short (a hint only): with BF16's two splits a pass
// has as many steps as a whole chunk has lines per row.
template <typename Split, int R, int T>
void SplitPasses(const uint8_t* w, int64_t w_stride, const uint8_t* a, int64_t a_stride,
                 int64_t k0, int64_t k1, bool first, const SplitPrefetch& pf, V16* part) {
  constexpr int S = Split::kSplits, W = Split::kWidth;
  const int row_lines = std::max(pf.line_end - pf.line_begin, 0);
  // Spread form: a cursor over the R rows' lines.
  int left = R * row_lines;
  const int steps = S * static_cast<int>((k1 - k0) / 64);
  const int per_step = (left + steps - 1) / steps;
  const uint8_t* pp = pf.base + 64 * pf.line_begin;
  const uint8_t* row_end = pf.base + 64 * pf.line_end;
  // Row-wise form: the share sits at the same byte offset from every row.
  const int64_t row_offset = (pf.base + 64 * pf.line_begin) - w;
  const int64_t row_offset_end = row_offset + 64 * row_lines;
  int64_t next = row_offset;
  for (int j = 0; j < S; ++j) {
    V16 acc[R][T];
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) {
        acc[r][t] = first ? V16Zero() : part[(t * Split::kGroupRows + r) * S + j];
      }
    }
    for (int64_t i = k0 + W * j; i < k1; i += 64) {
      if constexpr (Split::kPrefetchByRow) {
        if (next < row_offset_end) {
          for (int r = 0; r < R; ++r) {
            _mm_prefetch(reinterpret_cast<const char*>(w + r * w_stride + next), _MM_HINT_T0);
          }
          next += 64;
        }
      } else {
        for (int c = 0; c < per_step && left > 0; ++c, --left) {
          _mm_prefetch(reinterpret_cast<const char*>(pp), _MM_HINT_T0);
          pp += 64;
          if (pp == row_end) {
            pp += w_stride - 64 * row_lines;
            row_end += w_stride;
          }
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
// one at a time; pf.base is row 0's share, each row tile prefetches its
// own rows' lines.
template <typename Split, int T>
void SplitRows(const uint8_t* w, int64_t w_stride, int rows, const uint8_t* a, int64_t a_stride,
               int64_t k0, int64_t k1, bool first, const SplitPrefetch& pf, V16* part) {
  constexpr int S = Split::kSplits;
  int r = 0;
  for (; r + kSplitRows <= rows; r += kSplitRows) {
    const SplitPrefetch rpf{pf.base + r * w_stride, pf.line_begin, pf.line_end};
    SplitPasses<Split, kSplitRows, T>(w + r * w_stride, w_stride, a, a_stride, k0, k1, first, rpf,
                                      part + r * S);
  }
  for (; r < rows; ++r) {
    const SplitPrefetch rpf{pf.base + r * w_stride, pf.line_begin, pf.line_end};
    SplitPasses<Split, 1, T>(w + r * w_stride, w_stride, a, a_stride, k0, k1, first, rpf,
                             part + r * S);
  }
}

// SplitRows for a tile of `tokens` (1..T) tokens.
template <typename Split, int T = Split::kTileTokens>
void SplitRowsOfWidth(int tokens, const uint8_t* w, int64_t w_stride, int rows, const uint8_t* a,
                      int64_t a_stride, int64_t k0, int64_t k1, bool first,
                      const SplitPrefetch& pf, V16* part) {
  if constexpr (T > 1) {
    if (tokens < T) {
      SplitRowsOfWidth<Split, T - 1>(tokens, w, w_stride, rows, a, a_stride, k0, k1, first, pf,
                                     part);
      return;
    }
  }
  SplitRows<Split, T>(w, w_stride, rows, a, a_stride, k0, k1, first, pf, part);
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
  constexpr int64_t kChunk = Split::kChunk;
  const int64_t num_chunks = (np + kChunk - 1) / kChunk;
  constexpr int kTokens = Split::kTileTokens;
  const int num_token_tiles = (nt + kTokens - 1) / kTokens;
  if (num_chunks == 0) std::fill(part, part + part_size, V16Zero());
  for (int r0 = 0; r0 < nr; r0 += G) {
    const int rows = std::min(G, nr - r0);
    const uint8_t* wg = w + r0 * w_stride;
    for (int64_t c = 0; c < num_chunks; ++c) {
      const int64_t k0 = c * kChunk, k1 = std::min(k0 + kChunk, np);
      // The chunk Split::kPrefetchAhead on in the order (group, chunk): past
      // the tile's last group, rows a caller may read next (a prefetch never
      // faults). Each token tile prefetches its share of the chunk's lines.
      const int64_t ahead = (r0 / G) * num_chunks + c + Split::kPrefetchAhead;
      const int64_t pc = ahead % num_chunks;
      const uint8_t* pf_base = w + (ahead / num_chunks) * G * w_stride + 2 * pc * kChunk;
      const int lines = static_cast<int>(
          (std::min(np, (pc + 1) * kChunk) - pc * kChunk) * 2 / 64);
      for (int q = 0; q < num_token_tiles; ++q) {
        const int t = q * kTokens;
        const SplitPrefetch pf{pf_base, q * lines / num_token_tiles,
                               (q + 1) * lines / num_token_tiles};
        const uint8_t* at = a + t * a_stride;
        V16* pt = part + t * kPartToken;
        SplitRowsOfWidth<Split>(std::min(nt - t, kTokens), wg, w_stride, rows, at, a_stride, k0,
                                k1, c == 0, pf, pt);
      }
    }
    // Sixteen (token, row) results at a time in the vector form of Finish
    // where there is no n % 64 tail, else one at a time. part's entries
    // past `rows` hold stale values; their results are not stored.
    int k = 0;
    if (n == np) {
      alignas(64) float out[16];
      for (; k + 16 <= nt * G; k += 16) {
        Split::FinishSixteen(part + k * S, out);
        for (int e = 0; e < 16; ++e) {
          const int t = (k + e) / G, r = (k + e) % G;
          if (r < rows) y[t * y_stride + r0 + r] = out[e];
        }
      }
    }
    for (; k < nt * G; ++k) {
      const int t = k / G, r = k % G;
      if (r < rows) {
        y[t * y_stride + r0 + r] =
            Split::Finish(part + k * S, wg + r * w_stride, a + t * a_stride, n);
      }
    }
  }
}
#endif  // PHI3_WIDE_REGISTERS

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_SIMD_SPLIT_TILE_H_
