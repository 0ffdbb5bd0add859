// RunAttentionLayer: RoPE + K/V store, then tiled attention (attention.h).
//
// Query tile: up to kMaxQueries rows of one sequence with the same rounding,
// sorted by position; the byte offsets of its positions' K/V rows are
// computed once per layer for all heads. Per (tile, head):
//   prompt rounding (and q8_0 KV): scores of every query against K tiles of
//     kKvTile positions (a tile is converted to f32 once for all the tile's
//     queries), row softmax, then P x V over V blocks into per-lane-class
//     accumulators (kTile classes for prompt rounding, 64 for decode),
//     reduced in llama.cpp's order at the end;
//   decode rounding with an f16 pool: per query, scores straight from the
//     pool, softmax, and P x V with the 64 lane classes held in registers
//     and reduced in the kernel (pv_decode_f16).
// Work items are (head group, tile), group-major, one group per thread: each
// thread gets every tile (a similar causal load, whatever the contexts) and
// walks a tile's heads back to back (adjacent bytes of the same rows).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/dot.h"
#include "engine/kernels/quantize.h"
#include "engine/model/attention.h"
#include "engine/model/attention_kernels_internal.h"
#include "engine/model/ops.h"

namespace phi3 {
namespace {

constexpr int kTile = 16;            // positions per score call; lane classes (prompt)
constexpr int kMaxQueries = 32;      // queries per tile: each K/V tile is converted once for them
constexpr int kKvTile = 256;         // KV positions converted to f32 at once (multiple of 64)
constexpr int kDecodeClasses = 64;   // ggml_vec_dot_f16: 4 accumulators x 16 lanes
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

const internal::AttentionTileKernels& TileKernels() {
  return SelectBySimdLevel(ActiveSimdLevel(), &internal::ScalarTileKernels,
                           &internal::Avx2TileKernels, &internal::Avx512TileKernels);
}

struct Scratch {
  std::vector<float> k_tile, v_tile;  // [kKvTile][head_dim]
  std::vector<float> scores;          // [queries][n16]: scores, then probabilities
  std::vector<float> acc;             // [queries][classes][head_dim]
};
thread_local Scratch tls_scratch;

template <typename T>
void Grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

struct QueryTile {
  int32_t seq = 0;
  bool batched = false;
  int count = 0;
  int n_max = 0;                // positions the tile's last query sees
  const int64_t* offsets = nullptr;  // [round_up(n_max, 16)] byte offset of each
                                     // position's K/V row; padding -> position 0
  int64_t rows[kMaxQueries];
};

// Positions [p0, p0 + n) of one KV head (rows at pool + offsets[p]) as f32
// rows of `tile`; rows n..kKvTile-1 = 0.
void LoadTile(const AttentionLayerArgs& a, const internal::AttentionTileKernels& kern,
              const uint8_t* pool, const int64_t* offsets, int p0, int n, float* tile) {
  const int hd = a.head_dim;
  for (int j = 0; j < n; ++j) {
    const uint8_t* src = pool + offsets[p0 + j];
    if (a.kv_type == KvCacheType::kQ8_0) {
      DequantizeRow(TensorType::kQ8_0, src, tile + j * hd, hd);
    } else {
      kern.f16_to_f32(reinterpret_cast<const uint16_t*>(src), tile + j * hd, hd);
    }
  }
  std::fill(tile + n * hd, tile + kKvTile * hd, 0.0f);
}

// ggml_soft_max_ext (scale 1, causal mask) over row[0, n16) whose entries
// past the query's position are -inf, then the f16 rounding ggml applies to
// the probabilities before the V product. n16 % 16 == 0.
void SoftmaxRow(const internal::AttentionTileKernels& kern, float* row, int n16) {
  float mx = kNegInf;
  for (int i = 0; i < n16; ++i) mx = std::max(mx, row[i]);
  for (int i = 0; i < n16; ++i) row[i] = row[i] - mx;
  ExpRow(row, n16, row);
  double sum = 0.0;
  for (int i = 0; i < n16; i += 16) sum += static_cast<double>(internal::Tree16(row + i));
  const float inv = static_cast<float>(1.0 / sum);
  for (int i = 0; i < n16; ++i) row[i] = row[i] * inv;
  kern.round_f16(row, n16);
}

// Folds the lane classes of one query into out[0, head_dim): decode first
// folds its 4 accumulators ((0 + 2) + (1 + 3)), then tree16 over lanes.
void ReduceClasses(float* c, int classes, int hd, float* out) {
  if (classes == kDecodeClasses) {
    for (int l = 0; l < 16; ++l) {
      float* c0 = c + l * hd;
      const float* c1 = c + (16 + l) * hd;
      const float* c2 = c + (32 + l) * hd;
      const float* c3 = c + (48 + l) * hd;
      for (int d = 0; d < hd; ++d) c0[d] = (c0[d] + c2[d]) + (c1[d] + c3[d]);
    }
  }
  for (int width = 8; width >= 1; width /= 2) {
    for (int l = 0; l < width; ++l) {
      float* x = c + l * hd;
      const float* y = c + (l + width) * hd;
      for (int d = 0; d < hd; ++d) x[d] = x[d] + y[d];
    }
  }
  std::copy_n(c, hd, out);
}

// Attention of the tile's queries for one head. next_head (or -1): the head
// the caller runs next on this tile; first: no head of this tile ran just
// before (for the decode path's prefetches).
void AttendTile(const AttentionLayerArgs& a, const internal::AttentionTileKernels& kern,
                const QueryTile& tile, int head, int next_head, bool first) {
  const int hd = a.head_dim;
  const int q_dim = a.num_heads * hd;
  const int kv_dim = a.num_kv_heads * hd;
  const int qkv_dim = q_dim + 2 * kv_dim;
  const int heads_per_kv = a.num_heads / a.num_kv_heads;
  const int kv_head = head / heads_per_kv;
  const int64_t head_offset =
      a.kv_type == KvCacheType::kQ8_0
          ? static_cast<int64_t>(kv_head) * (hd / kQK8_0) * static_cast<int64_t>(sizeof(BlockQ8_0))
          : static_cast<int64_t>(kv_head) * hd * 2;
  const uint8_t* k_base = a.k_pool + head_offset;
  const uint8_t* v_base = a.v_pool + head_offset;
  const int nq = tile.count;
  const int n_max = tile.n_max;
  int n_vis[kMaxQueries];  // positions query i sees
  for (int i = 0; i < nq; ++i) n_vis[i] = a.row_pos[tile.rows[i]] + 1;
  const int n16 = (n_max + kTile - 1) / kTile * kTile;
  Scratch& s = tls_scratch;
  Grow(s.scores, static_cast<size_t>(nq) * n16);
  auto query = [&](int i) { return a.qkv + tile.rows[i] * qkv_dim + head * hd; };
  auto score_row = [&](int i) { return s.scores.data() + static_cast<int64_t>(i) * n16; };
  auto out_of = [&](int i) { return a.out + tile.rows[i] * q_dim + head * hd; };

  if (!tile.batched && a.kv_type == KvCacheType::kF16 && hd <= 128) {
    // Decode: straight from the f16 pool, no tile conversion, no class
    // accumulators in memory. A (tile, head)'s K/V rows are scattered (one
    // row per position, token_bytes apart), so the first query's scores
    // also prefetch the next head's rows (the adjacent bytes of the same
    // positions; nothing when it shares this KV head) and, for the first
    // head of a run, this head's V.
    const int next_kv = next_head < 0 ? kv_head : next_head / heads_per_kv;
    const int64_t next_offset = static_cast<int64_t>(next_kv - kv_head) * hd * 2;
    const uint8_t* prefetch[3] = {first ? v_base : nullptr,
                                  next_offset == 0 ? nullptr : k_base + next_offset,
                                  next_offset == 0 ? nullptr : v_base + next_offset};
    for (int i = 0; i < nq; ++i) {
      float* row = score_row(i);
      const int n = n_vis[i];
      kern.scores_decode_f16(query(i), k_base, tile.offsets, n, hd, row, prefetch,
                             i == 0 ? 3 : 0);
      const int n16_i = (n + kTile - 1) / kTile * kTile;
      for (int p = n; p < n16_i; ++p) row[p] = kNegInf;
      SoftmaxRow(kern, row, n16_i);
      kern.pv_decode_f16(row, v_base, tile.offsets, n, hd, out_of(i));
    }
    return;
  }

  const int classes = tile.batched ? kTile : kDecodeClasses;
  Grow(s.acc, static_cast<size_t>(nq) * classes * hd);
  std::fill(s.acc.begin(), s.acc.begin() + static_cast<int64_t>(nq) * classes * hd, 0.0f);
  auto acc_of = [&](int i) { return s.acc.data() + static_cast<int64_t>(i) * classes * hd; };
  Grow(s.k_tile, static_cast<size_t>(kKvTile) * hd);
  Grow(s.v_tile, static_cast<size_t>(kKvTile) * hd);
  auto score_fn = tile.batched ? kern.scores_prompt : kern.scores_decode;
  // Scores: [nq][n16], -inf where a query does not see the position.
  for (int p0 = 0; p0 < n_max; p0 += kKvTile) {
    const int n = std::min(kKvTile, n_max - p0);
    LoadTile(a, kern, k_base, tile.offsets, p0, n, s.k_tile.data());
    for (int b = 0; b < n; b += kTile) {
      for (int i = 0; i < nq; ++i) {
        float* row = score_row(i) + p0 + b;
        if (p0 + b >= n_vis[i]) {
          std::fill(row, row + kTile, kNegInf);
          continue;
        }
        score_fn(query(i), s.k_tile.data() + b * hd, hd, row);
        for (int j = n_vis[i] - p0 - b; j < kTile; ++j) row[j] = kNegInf;
      }
    }
  }
  for (int i = 0; i < nq; ++i) {
    SoftmaxRow(kern, score_row(i), (n_vis[i] + kTile - 1) / kTile * kTile);
  }
  // P x V into lane-class accumulators.
  for (int p0 = 0; p0 < n_max; p0 += kKvTile) {
    const int n = std::min(kKvTile, n_max - p0);
    LoadTile(a, kern, v_base, tile.offsets, p0, n, s.v_tile.data());
    for (int i = 0; i < nq; ++i) {
      if (p0 >= n_vis[i]) continue;
      kern.accumulate_pv(score_row(i) + p0, s.v_tile.data(), std::min(n, n_vis[i] - p0), hd,
                         classes, acc_of(i));
    }
  }
  for (int i = 0; i < nq; ++i) ReduceClasses(acc_of(i), classes, hd, out_of(i));
}

// head_dim % 16 != 0: one query at a time (AttendHead).
void AttendUntiled(const AttentionLayerArgs& a, int64_t row, int head) {
  const int hd = a.head_dim;
  const int q_dim = a.num_heads * hd;
  const int qkv_dim = q_dim + 2 * a.num_kv_heads * hd;
  const int n_kv = a.row_pos[row] + 1;
  Scratch& s = tls_scratch;
  Grow(s.scores, static_cast<size_t>(n_kv));
  const KvLayerView kv{a.kv_type, a.k_pool, a.v_pool, a.block_size, a.kv_token_bytes};
  AttendHead(GetAttentionKernels(), a.qkv + row * qkv_dim + head * hd, kv,
             a.sequences[a.row_seq[row]].block_table, head / (a.num_heads / a.num_kv_heads), hd,
             n_kv, s.scores.data(), a.out + row * q_dim + head * hd);
}

}  // namespace

void RunAttentionLayer(const AttentionLayerArgs& a, ThreadPool& pool) {
  const int hd = a.head_dim;
  const int q_dim = a.num_heads * hd;
  const int kv_dim = a.num_kv_heads * hd;
  const int qkv_dim = q_dim + 2 * kv_dim;
  const int64_t T = a.num_rows;
  if (T == 0) return;
  const internal::AttentionTileKernels& kern = TileKernels();
  // RoPE on Q and K (llama.cpp's fused rounding), Q scaled then rounded to
  // f16 (ggml converts it for the f16 K . Q matmul), K and V stored.
  pool.ParallelFor(T, [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) {
      float* qkv = a.qkv + t * qkv_dim;
      const float* cs = a.rope + t * a.rope_dims;
      for (int h = 0; h < a.num_heads; ++h) {
        float* qh = qkv + h * hd;
        kern.rope_neox(cs, a.rope_dims, qh);
        for (int i = 0; i < hd; ++i) qh[i] *= a.q_scale;
      }
      if (q_dim % 16 == 0) {
        kern.round_f16(qkv, q_dim);
      } else {
        RoundToF16(qkv, q_dim);
      }
      for (int h = 0; h < a.num_kv_heads; ++h) kern.rope_neox(cs, a.rope_dims, qkv + q_dim + h * hd);
      const SequenceSlice& q = a.sequences[a.row_seq[t]];
      const int32_t pos = a.row_pos[t];
      const int64_t slot =
          static_cast<int64_t>(q.block_table[pos / a.block_size]) * a.block_size +
          pos % a.block_size;
      StoreKv(a.kv_type, qkv + q_dim, qkv + q_dim + kv_dim, kv_dim, slot, a.kv_token_bytes,
              a.k_pool, a.v_pool);
    }
  });

  if (hd % kTile != 0) {
    pool.ParallelFor(T * a.num_heads, [&](int64_t begin, int64_t end, int) {
      for (int64_t item = begin; item < end; ++item) {
        AttendUntiled(a, item % T, static_cast<int>(item / T));
      }
    });
    return;
  }

  // Query tiles: rows of one sequence and one rounding, by position.
  std::vector<int64_t> order(T);
  for (int64_t t = 0; t < T; ++t) order[t] = t;
  auto batched = [&](int64_t t) {
    return a.row_batched != nullptr ? a.row_batched[t] != 0
                                    : a.sequences[a.row_seq[t]].tokens.size() >= 2;
  };
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
    if (a.row_seq[x] != a.row_seq[y]) return a.row_seq[x] < a.row_seq[y];
    if (batched(x) != batched(y)) return batched(x) < batched(y);
    return a.row_pos[x] < a.row_pos[y];
  });
  std::vector<QueryTile> tiles;
  for (int64_t t : order) {
    const bool b = batched(t);
    if (tiles.empty() || tiles.back().count == kMaxQueries || tiles.back().seq != a.row_seq[t] ||
        tiles.back().batched != b) {
      tiles.emplace_back();
      tiles.back().seq = a.row_seq[t];
      tiles.back().batched = b;
    }
    QueryTile& tile = tiles.back();
    tile.rows[tile.count++] = t;
  }
  // Row offsets of every tile's positions, shared by all heads (the block
  // table walked once per tile instead of once per head).
  thread_local std::vector<int64_t> offsets;
  size_t total = 0;
  for (QueryTile& tile : tiles) {
    for (int i = 0; i < tile.count; ++i) {
      tile.n_max = std::max(tile.n_max, a.row_pos[tile.rows[i]] + 1);
    }
    total += static_cast<size_t>((tile.n_max + kTile - 1) / kTile * kTile);
  }
  Grow(offsets, total);
  int64_t* next = offsets.data();
  for (QueryTile& tile : tiles) {
    const std::span<const int32_t> table = a.sequences[tile.seq].block_table;
    const int n16 = (tile.n_max + kTile - 1) / kTile * kTile;
    for (int p0 = 0, b = 0; p0 < tile.n_max; p0 += a.block_size, ++b) {
      const int64_t first = static_cast<int64_t>(table[b]) * a.block_size * a.kv_token_bytes;
      const int m = std::min(a.block_size, tile.n_max - p0);
      for (int j = 0; j < m; ++j) next[p0 + j] = first + j * a.kv_token_bytes;
    }
    for (int p = tile.n_max; p < n16; ++p) next[p] = next[0];  // padding: a valid row
    tile.offsets = next;
    next += n16;
  }
  const int64_t num_tiles = static_cast<int64_t>(tiles.size());
  // Item = (head group, tile), group-major: with one group per thread each
  // thread gets every tile (similar causal load) and walks a tile's heads
  // back to back, i.e. adjacent bytes of the same K/V rows.
  const int groups = std::min(a.num_heads, pool.num_threads());
  pool.ParallelFor(num_tiles * groups, [&](int64_t begin, int64_t end, int) {
    for (int64_t item = begin; item < end; ++item) {
      const int g = static_cast<int>(item / num_tiles);
      const int h_end = (g + 1) * a.num_heads / groups;
      const int h_begin = g * a.num_heads / groups;
      for (int h = h_begin; h < h_end; ++h) {
        AttendTile(a, kern, tiles[item % num_tiles], h, h + 1 < h_end ? h + 1 : -1, h == h_begin);
      }
    }
  });
}

}  // namespace phi3
