// Attention: the SIMD primitives against the scalar ones (sizes 0..40,
// misaligned pointers); AttendHead against a direct computation over a
// scattered block table, for f16 and q8_0 pools; the tile kernels of every
// SIMD level bit-identical to the scalar ones and to test-local emulations
// of llama.cpp's two orders (tinyBLAS / ggml_vec_dot_f16); RunAttentionLayer
// bit-identical to a test-local llama.cpp-order attention, near a double
// attention, and independent of threads, row order and SIMD level.
#include "engine/model/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/dot.h"
#include "engine/kernels/quantize.h"
#include "engine/model/attention_kernels_internal.h"
#include "engine/model/ops.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

std::vector<float> Random(std::mt19937& rng, int n) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(AttentionKernelsTest, SimdMatchesScalar) {
  const AttentionKernels& scalar = GetScalarAttentionKernels();
  const AttentionKernels& active = GetAttentionKernels();
  std::mt19937 rng(7);
  for (int n = 0; n <= 40; ++n) {
    for (int offset = 0; offset < 3; ++offset) {
      std::vector<float> q = Random(rng, n + offset), y0 = Random(rng, n + offset);
      std::vector<uint16_t> k(n + offset);
      for (int i = 0; i < n + offset; ++i) k[i] = F32ToF16(q[(i * 7) % (n + offset)] * 0.5f);
      const float want = scalar.dot_f16(k.data() + offset, q.data() + offset, n);
      const float got = active.dot_f16(k.data() + offset, q.data() + offset, n);
      EXPECT_NEAR(got, want, 1e-5f * (1 + n)) << active.name << " n=" << n;
      std::vector<float> y1 = y0;
      scalar.axpy_f16(0.37f, k.data() + offset, y0.data() + offset, n);
      active.axpy_f16(0.37f, k.data() + offset, y1.data() + offset, n);
      for (int i = 0; i < n + offset; ++i) EXPECT_NEAR(y0[i], y1[i], 1e-6f) << "n=" << n;
    }
  }
}

// Softmax attention over positions [0, n_kv) computed directly from f32 K/V.
void Reference(const std::vector<float>& q, const std::vector<std::vector<float>>& k,
               const std::vector<std::vector<float>>& v, int head, int head_dim, int n_kv,
               std::vector<float>& out) {
  std::vector<double> s(n_kv);
  double mx = -1e300, sum = 0;
  for (int t = 0; t < n_kv; ++t) {
    double d = 0;
    for (int i = 0; i < head_dim; ++i) d += q[i] * k[t][head * head_dim + i];
    s[t] = d;
    mx = std::max(mx, d);
  }
  for (double& e : s) sum += (e = std::exp(e - mx));
  out.assign(head_dim, 0.0f);
  for (int t = 0; t < n_kv; ++t) {
    for (int i = 0; i < head_dim; ++i) out[i] += s[t] / sum * v[t][head * head_dim + i];
  }
}

void CheckAttendHead(KvCacheType type, float tolerance) {
  constexpr int kHeads = 2, kHeadDim = 64, kKvDim = kHeads * kHeadDim, kBlock = 4, kBlocks = 8;
  const int n_kv = 27;
  std::mt19937 rng(11);
  const int64_t token_bytes = KvTokenBytes(type, kKvDim);
  std::vector<uint8_t> k_pool(kBlocks * kBlock * token_bytes), v_pool(k_pool.size());
  const std::vector<int32_t> table = {5, 0, 7, 2, 6, 1, 3};
  std::vector<std::vector<float>> k(n_kv), v(n_kv);
  for (int t = 0; t < n_kv; ++t) {
    k[t] = Random(rng, kKvDim);
    v[t] = Random(rng, kKvDim);
    const int64_t slot = static_cast<int64_t>(table[t / kBlock]) * kBlock + t % kBlock;
    StoreKv(type, k[t].data(), v[t].data(), kKvDim, slot, token_bytes, k_pool.data(),
            v_pool.data());
  }
  KvLayerView view{type, k_pool.data(), v_pool.data(), kBlock, token_bytes};
  std::vector<float> q = Random(rng, kHeadDim);
  for (float& x : q) x *= 2.0f;
  std::vector<float> scores(n_kv), got(kHeadDim), want;
  for (int head = 0; head < kHeads; ++head) {
    AttendHead(GetAttentionKernels(), q.data(), view, table, head, kHeadDim, n_kv, scores.data(),
               got.data());
    Reference(q, k, v, head, kHeadDim, n_kv, want);
    for (int i = 0; i < kHeadDim; ++i) EXPECT_NEAR(got[i], want[i], tolerance) << i;
  }
}

TEST(AttendHeadTest, F16PoolMatchesDirectAttention) { CheckAttendHead(KvCacheType::kF16, 3e-3f); }
TEST(AttendHeadTest, Q8PoolMatchesDirectAttention) { CheckAttendHead(KvCacheType::kQ8_0, 3e-2f); }

// ---- llama.cpp's orders, written out independently of attention_tile_generic.h

float Tree(const float* x) {  // _mm512_reduce_add_ps
  float a[16];
  std::memcpy(a, x, sizeof(a));
  for (int w = 8; w >= 1; w /= 2) {
    for (int i = 0; i < w; ++i) a[i] = a[i] + a[i + w];
  }
  return a[0];
}

// tinyBLAS<16, __m512, ..., ggml_fp16_t>: lane l = fma chain over i = l mod 16.
float PromptDot(const float* x, const float* y, int n, int stride_x = 1) {
  float lanes[16];
  for (int l = 0; l < 16; ++l) {
    float acc = 0.0f;
    for (int i = l; i < n; i += 16) acc = std::fma(x[i * stride_x], y[i], acc);
    lanes[l] = acc;
  }
  return Tree(lanes);
}

// ggml_vec_dot_f16, AVX-512 without FP16: 4 x 16-lane accumulators per 64
// elements, (0 + 2) + (1 + 3), reduce, then a sequential double tail.
float DecodeDot(const float* x, const float* y, int n, int stride_x = 1) {
  const int np = n & ~63;
  float sum[4][16] = {};
  for (int i = 0; i < np; i += 64) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 16; ++l) {
        const int e = i + 16 * j + l;
        sum[j][l] = std::fma(x[e * stride_x], y[e], sum[j][l]);
      }
    }
  }
  for (int l = 0; l < 16; ++l) {
    sum[0][l] = sum[0][l] + sum[2][l];
    sum[1][l] = sum[1][l] + sum[3][l];
  }
  for (int l = 0; l < 16; ++l) sum[0][l] = sum[0][l] + sum[1][l];
  double sumf = Tree(sum[0]);
  for (int i = np; i < n; ++i) sumf += static_cast<double>(x[i * stride_x] * y[i]);
  return static_cast<float>(sumf);
}

std::vector<float> RandomF16Values(std::mt19937& rng, int n, float scale) {
  std::vector<float> v = Random(rng, n);
  for (float& x : v) x = F16ToF32(F32ToF16(x * scale));
  return v;
}

std::vector<const internal::AttentionTileKernels*> TileLevels() {
  std::vector<const internal::AttentionTileKernels*> levels = {&internal::ScalarTileKernels()};
  for (SimdLevel l : SupportedSimdLevels()) {
    if (l == SimdLevel::kAvx2) levels.push_back(&internal::Avx2TileKernels());
    if (l == SimdLevel::kAvx512) levels.push_back(&internal::Avx512TileKernels());
  }
  return levels;
}

TEST(AttentionTileKernelsTest, EveryLevelComputesLlamaCppOrdersBitForBit) {
  std::mt19937 rng(5);
  int prompt_decode_differ = 0;
  for (int hd : {16, 32, 64, 96, 128}) {
    for (int trial = 0; trial < 20; ++trial) {
      const std::vector<float> q = RandomF16Values(rng, hd, 2.0f);
      const std::vector<float> k = RandomF16Values(rng, 16 * hd, 2.0f);
      float want_p[16], want_d[16];
      for (int j = 0; j < 16; ++j) {
        want_p[j] = PromptDot(&k[j * hd], q.data(), hd);
        want_d[j] = DecodeDot(&k[j * hd], q.data(), hd);
        prompt_decode_differ += want_p[j] != want_d[j];
      }
      for (const auto* kern : TileLevels()) {
        float got[16];
        kern->scores_prompt(q.data(), k.data(), hd, got);
        for (int j = 0; j < 16; ++j) ASSERT_EQ(got[j], want_p[j]) << kern->name << " hd=" << hd;
        kern->scores_decode(q.data(), k.data(), hd, got);
        for (int j = 0; j < 16; ++j) ASSERT_EQ(got[j], want_d[j]) << kern->name << " hd=" << hd;
      }
      // P x V: class c accumulates positions t = c (mod classes) in order.
      const int n = 16 + trial * 3 % 48;  // 16 .. 64 positions
      const std::vector<float> p = RandomF16Values(rng, n, 0.5f);
      const std::vector<float> v = RandomF16Values(rng, n * hd, 1.0f);
      std::vector<float> pz = p;
      for (int t = 3; t < n; t += 7) pz[t] = 0.0f;  // p == 0: skipped exactly
      for (int classes : {16, 64}) {
        std::vector<float> want(64 * hd, 0.0f);
        for (int t = 0; t < n; ++t) {
          if (pz[t] == 0.0f) continue;
          for (int d = 0; d < hd; ++d) {
            float& w = want[(t % classes) * hd + d];
            w = std::fma(v[t * hd + d], pz[t], w);
          }
        }
        for (const auto* kern : TileLevels()) {
          std::vector<float> acc(64 * hd, 0.0f);
          kern->accumulate_pv(pz.data(), v.data(), n, hd, classes, acc.data());
          ASSERT_EQ(acc, want) << kern->name << " hd=" << hd << " classes=" << classes;
        }
      }
    }
  }
  std::vector<uint16_t> h(64);
  for (int i = 0; i < 64; ++i) h[i] = static_cast<uint16_t>(rng());
  h[0] = 0x7c00;  // inf
  h[1] = 0x0001;  // smallest subnormal
  std::vector<float> r = Random(rng, 64);
  r[0] = 65520.0f;   // rounds to inf
  r[1] = 2.98e-8f;   // rounds to the smallest subnormal
  for (const auto* kern : TileLevels()) {
    std::vector<float> f(64), rr = r;
    kern->f16_to_f32(h.data(), f.data(), 64);
    kern->round_f16(rr.data(), 64);
    for (int i = 0; i < 64; ++i) {
      ASSERT_EQ(rr[i], F16ToF32(F32ToF16(r[i]))) << kern->name << " " << r[i];
      if (std::isnan(F16ToF32(h[i]))) continue;
      ASSERT_EQ(f[i], F16ToF32(h[i])) << kern->name << " " << h[i];
    }
  }
  // The two orders are distinguishable, so the checks above pin which is which.
  EXPECT_GT(prompt_decode_differ, 50);
}

// The decode kernels that read an f16 pool directly: scores and P x V over n
// scattered, misaligned rows (n = 1 .. 300: every number of lane chains, tails
// of 16, several 64-position blocks) equal ggml_vec_dot_f16 per position and
// per output column (V^T row against the probabilities zero-padded to 64 as
// llama.cpp pads n_kv), on every level.
TEST(AttentionTileKernelsTest, DecodeF16PoolKernelsAreLlamaCppOrders) {
  std::mt19937 rng(6);
  for (int hd : {16, 48, 64, 96, 112, 128}) {
    for (int n : {1, 5, 16, 17, 31, 33, 48, 50, 64, 65, 72, 100, 129, 200, 300}) {
      const int n16 = (n + 15) / 16 * 16, n64 = (n + 63) / 64 * 64;
      const int rows = n16 + 3, stride = hd + 24;  // pool rows of `stride` f16 values
      const std::vector<float> kf = RandomF16Values(rng, rows * stride, 2.0f);
      const std::vector<float> vf = RandomF16Values(rng, rows * stride, 1.0f);
      std::vector<uint16_t> kp(rows * stride), vp(rows * stride);
      for (int i = 0; i < rows * stride; ++i) {
        kp[i] = F32ToF16(kf[i]);
        vp[i] = F32ToF16(vf[i]);
      }
      std::vector<int64_t> offsets(n16);  // bytes; rows out of order, 2-byte aligned
      for (int j = 0; j < n16; ++j) {
        offsets[j] = 2 * (static_cast<int64_t>(j * 7 % rows) * stride + 1);
      }
      const std::vector<float> q = RandomF16Values(rng, hd, 1.0f);
      std::vector<float> want_s(n16);
      for (int j = 0; j < n16; ++j) want_s[j] = DecodeDot(&kf[offsets[j] / 2], q.data(), hd);
      std::vector<float> p(n64, 0.0f);
      const std::vector<float> pr = RandomF16Values(rng, n, 0.2f);
      for (int t = 0; t < n; ++t) p[t] = t % 11 == 3 ? 0.0f : pr[t];
      std::vector<float> want_o(hd), col(n64, 0.0f);
      for (int d = 0; d < hd; ++d) {
        for (int t = 0; t < n; ++t) col[t] = vf[offsets[t] / 2 + d];
        want_o[d] = DecodeDot(col.data(), p.data(), n64);
      }
      const uint8_t* k_base = reinterpret_cast<const uint8_t*>(kp.data());
      const uint8_t* v_base = reinterpret_cast<const uint8_t*>(vp.data());
      const uint8_t* prefetch[2] = {v_base, nullptr};
      for (const auto* kern : TileLevels()) {
        std::vector<float> got_s(n16), got_o(hd);
        kern->scores_decode_f16(q.data(), k_base, offsets.data(), n, hd, got_s.data(), prefetch,
                                2);
        ASSERT_EQ(got_s, want_s) << kern->name << " hd=" << hd << " n=" << n;
        kern->pv_decode_f16(p.data(), v_base, offsets.data(), n, hd, got_o.data());
        ASSERT_EQ(got_o, want_o) << kern->name << " hd=" << hd << " n=" << n;
      }
    }
  }
}

TEST(AttentionTileKernelsTest, RopeIsFusedLikeLlamaCpp) {
  std::mt19937 rng(8);
  RopeParams rp;
  rp.rope_dims = 96;
  std::vector<float> cs(96);
  int unfused_differs = 0;
  for (int pos = 0; pos < 300; pos += 7) {
    RopeTable(rp, pos, cs.data());
    const std::vector<float> x = Random(rng, 96);
    std::vector<float> want(x), unfused(x);
    for (int i = 0; i < 48; ++i) {
      const float c = cs[2 * i], s = cs[2 * i + 1], x0 = x[i], x1 = x[i + 48];
      want[i] = std::fma(x0, c, -(x1 * s));
      want[i + 48] = std::fma(x0, s, x1 * c);
    }
    RopeNeoxHead(cs.data(), 96, unfused.data());
    for (int i = 0; i < 96; ++i) unfused_differs += unfused[i] != want[i];
    for (const auto* kern : TileLevels()) {
      std::vector<float> got(x);
      kern->rope_neox(cs.data(), 96, got.data());
      ASSERT_EQ(got, want) << kern->name << " pos " << pos;
    }
  }
  EXPECT_GT(unfused_differs, 100);  // the two roundings are distinguishable
}

// ---- RunAttentionLayer

struct SeqSpec {
  int start = 0, count = 1;  // new tokens at positions [start, start + count)
  bool decode = false;       // decode rounding even if count >= 2
};

// Sequence 0: a 37-token prompt from position 0 (prompt rounding); sequence
// 1: one decode token at position 150 over 150 cached positions; sequence 2: a
// 5-token chunk at positions 20..24 over 20 cached positions.
const std::vector<SeqSpec> kMixedBatch = {{0, 37}, {150, 1}, {20, 5}};

struct LayerCase {
  int heads = 4, kv_heads = 2, head_dim = 32;
  KvCacheType type = KvCacheType::kF16;
  std::vector<SeqSpec> seqs = kMixedBatch;
};

struct LayerSetup {
  LayerCase c;
  int block_size = 16;
  int64_t token_bytes = 0;
  std::vector<uint8_t> k_pool, v_pool;
  std::vector<std::vector<int32_t>> tables;
  std::vector<std::vector<int32_t>> tokens;  // only the counts matter
  std::vector<SequenceSlice> slices;
  std::vector<int32_t> row_seq, row_pos;
  std::vector<uint8_t> row_batched;
  std::vector<float> rope, qkv, out;
};

// The sequences of c.seqs with scattered block tables; rows interleaved
// across sequences.
LayerSetup MakeLayer(const LayerCase& c, uint32_t seed) {
  LayerSetup s;
  s.c = c;
  std::mt19937 rng(seed);
  const int kv_dim = c.kv_heads * c.head_dim, q_dim = c.heads * c.head_dim;
  const int qkv_dim = q_dim + 2 * kv_dim;
  const int num_seqs = static_cast<int>(c.seqs.size());
  s.token_bytes = KvTokenBytes(c.type, kv_dim);
  int num_blocks = 2;  // two blocks nobody uses
  for (const SeqSpec& q : c.seqs) {
    num_blocks += (q.start + q.count + s.block_size - 1) / s.block_size;
  }
  std::vector<int32_t> blocks(num_blocks);
  for (int b = 0; b < num_blocks; ++b) blocks[b] = b;
  std::shuffle(blocks.begin(), blocks.end(), rng);
  s.k_pool.assign(num_blocks * s.block_size * s.token_bytes, 0);
  s.v_pool.assign(s.k_pool.size(), 0);
  int next_block = 0;
  int max_count = 0;
  for (const SeqSpec& q : c.seqs) {
    const int nb = (q.start + q.count + s.block_size - 1) / s.block_size;
    s.tables.emplace_back(blocks.begin() + next_block, blocks.begin() + next_block + nb);
    next_block += nb;
    max_count = std::max(max_count, q.count);
  }
  for (int q = 0; q < num_seqs; ++q) {
    for (int p = 0; p < c.seqs[q].start; ++p) {  // cached positions
      const std::vector<float> k = Random(rng, kv_dim), v = Random(rng, kv_dim);
      const int64_t slot = static_cast<int64_t>(s.tables[q][p / s.block_size]) * s.block_size +
                           p % s.block_size;
      StoreKv(c.type, k.data(), v.data(), kv_dim, slot, s.token_bytes, s.k_pool.data(),
              s.v_pool.data());
    }
    s.tokens.push_back(std::vector<int32_t>(c.seqs[q].count, 1));
  }
  for (int q = 0; q < num_seqs; ++q) {
    SequenceSlice sl;
    sl.tokens = s.tokens[q];
    sl.start_pos = c.seqs[q].start;
    sl.block_table = s.tables[q];
    s.slices.push_back(sl);
  }
  for (int j = 0; j < max_count; ++j) {
    for (int q = 0; q < num_seqs; ++q) {
      if (j < c.seqs[q].count) {
        s.row_seq.push_back(q);
        s.row_pos.push_back(c.seqs[q].start + j);
        s.row_batched.push_back(c.seqs[q].count >= 2 && !c.seqs[q].decode);
      }
    }
  }
  const int64_t T = static_cast<int64_t>(s.row_seq.size());
  s.rope.resize(T * c.head_dim);
  RopeParams rp;
  rp.rope_dims = c.head_dim;
  for (int64_t t = 0; t < T; ++t) RopeTable(rp, s.row_pos[t], &s.rope[t * c.head_dim]);
  s.qkv = Random(rng, static_cast<int>(T * qkv_dim));
  for (float& x : s.qkv) x *= 3.0f;  // peaked softmax rows
  s.out.assign(T * q_dim, 0.0f);
  return s;
}

AttentionLayerArgs ArgsOf(LayerSetup& s) {
  AttentionLayerArgs a;
  a.sequences = s.slices;
  a.num_rows = static_cast<int64_t>(s.row_seq.size());
  a.row_seq = s.row_seq.data();
  a.row_pos = s.row_pos.data();
  a.row_batched = s.row_batched.data();
  a.rope = s.rope.data();
  a.rope_dims = s.c.head_dim;
  a.q_scale = 1.0f / std::sqrt(static_cast<float>(s.c.head_dim));
  a.qkv = s.qkv.data();
  a.out = s.out.data();
  a.num_heads = s.c.heads;
  a.num_kv_heads = s.c.kv_heads;
  a.head_dim = s.c.head_dim;
  a.kv_type = s.c.type;
  a.k_pool = s.k_pool.data();
  a.v_pool = s.v_pool.data();
  a.block_size = s.block_size;
  a.kv_token_bytes = s.token_bytes;
  return a;
}

// Row values of a pool (f16 or dequantized q8_0) at a position of a sequence.
std::vector<float> PoolRow(const LayerSetup& s, const std::vector<uint8_t>& pool, int seq,
                           int pos) {
  const int kv_dim = s.c.kv_heads * s.c.head_dim;
  const int64_t slot =
      static_cast<int64_t>(s.tables[seq][pos / s.block_size]) * s.block_size + pos % s.block_size;
  std::vector<float> row(kv_dim);
  const uint8_t* src = pool.data() + slot * s.token_bytes;
  if (s.c.type == KvCacheType::kQ8_0) {
    DequantizeRow(TensorType::kQ8_0, src, row.data(), kv_dim);
  } else {
    for (int i = 0; i < kv_dim; ++i) row[i] = F16ToF32(reinterpret_cast<const uint16_t*>(src)[i]);
  }
  return row;
}

// llama.cpp's attention for one row and head, given the processed Q
// (rotated, scaled, f16-rounded) and the pools after the layer ran.
std::vector<float> LlamaOrderAttention(const LayerSetup& s, const float* q, int seq, int pos,
                                       int head, bool batched) {
  const int hd = s.c.head_dim, kvh = head / (s.c.heads / s.c.kv_heads);
  const int n = pos + 1, n_pad = (n + 255) / 256 * 256;  // llama.cpp pads n_kv to 256
  std::vector<float> k(n_pad * hd, 0.0f), vt(hd * n_pad, 0.0f);
  for (int t = 0; t < n; ++t) {
    const std::vector<float> kr = PoolRow(s, s.k_pool, seq, t), vr = PoolRow(s, s.v_pool, seq, t);
    for (int d = 0; d < hd; ++d) {
      k[t * hd + d] = kr[kvh * hd + d];
      vt[d * n_pad + t] = vr[kvh * hd + d];
    }
  }
  std::vector<float> sc(n_pad, -std::numeric_limits<float>::infinity());
  for (int t = 0; t < n; ++t) {
    sc[t] = batched ? PromptDot(&k[t * hd], q, hd) : DecodeDot(&k[t * hd], q, hd);
  }
  const float mx = *std::max_element(sc.begin(), sc.end());
  for (float& x : sc) x -= mx;
  ExpRow(sc.data(), n_pad, sc.data());
  double sum = 0;
  for (int i = 0; i < n_pad; i += 16) sum += Tree(&sc[i]);
  const float inv = static_cast<float>(1.0 / sum);
  for (float& x : sc) x = F16ToF32(F32ToF16(x * inv));
  std::vector<float> out(hd);
  for (int d = 0; d < hd; ++d) {
    out[d] = batched ? PromptDot(&vt[d * n_pad], sc.data(), n_pad)
                     : DecodeDot(&vt[d * n_pad], sc.data(), n_pad);
  }
  return out;
}

void CheckLayer(const LayerCase& c) {
  LayerSetup s = MakeLayer(c, 3);
  const std::vector<float> qkv_in = s.qkv;
  ThreadPool pool1(1), pool2(2);
  RunAttentionLayer(ArgsOf(s), pool1);
  const int hd = c.head_dim, q_dim = c.heads * hd, kv_dim = c.kv_heads * hd;
  const int qkv_dim = q_dim + 2 * kv_dim;
  const int64_t T = static_cast<int64_t>(s.row_seq.size());
  double max_err = 0;
  for (int64_t t = 0; t < T; ++t) {
    for (int h = 0; h < c.heads; ++h) {
      const float* q = &s.qkv[t * qkv_dim + h * hd];
      const float* got = &s.out[t * q_dim + h * hd];
      const std::vector<float> want =
          LlamaOrderAttention(s, q, s.row_seq[t], s.row_pos[t], h, s.row_batched[t]);
      if (c.type == KvCacheType::kF16) {
        for (int d = 0; d < hd; ++d) {
          ASSERT_EQ(got[d], want[d]) << "row " << t << " head " << h << " d " << d;
        }
      }
      // Double-precision attention on the same (rounded) q, K and V.
      const int kvh = h / (c.heads / c.kv_heads), n = s.row_pos[t] + 1;
      std::vector<double> w(n);
      double mx = -1e300, sum = 0;
      for (int p = 0; p < n; ++p) {
        const std::vector<float> kr = PoolRow(s, s.k_pool, s.row_seq[t], p);
        double dot = 0;
        for (int d = 0; d < hd; ++d) dot += static_cast<double>(q[d]) * kr[kvh * hd + d];
        mx = std::max(mx, w[p] = dot);
      }
      for (double& x : w) sum += (x = std::exp(x - mx));
      for (int d = 0; d < hd; ++d) {
        double o = 0;
        for (int p = 0; p < n; ++p) o += w[p] / sum * PoolRow(s, s.v_pool, s.row_seq[t], p)[kvh * hd + d];
        max_err = std::max(max_err, std::abs(o - got[d]));
      }
    }
  }
  EXPECT_LT(max_err, 2e-3) << "probabilities are f16: ~5e-4 relative";
  // Same results with 2 threads, with the rows in another order, and on
  // every SIMD level.
  const std::vector<float> want_out = s.out;
  const auto rerun = [&](ThreadPool& pool, bool reverse) {
    LayerSetup r = MakeLayer(c, 3);
    if (reverse) {
      std::reverse(r.row_seq.begin(), r.row_seq.end());
      std::reverse(r.row_pos.begin(), r.row_pos.end());
      std::reverse(r.row_batched.begin(), r.row_batched.end());
      for (int64_t t = 0; t < T; ++t) {
        std::copy_n(&qkv_in[(T - 1 - t) * qkv_dim], qkv_dim, &r.qkv[t * qkv_dim]);
      }
      RopeParams rp;
      rp.rope_dims = hd;
      for (int64_t t = 0; t < T; ++t) RopeTable(rp, r.row_pos[t], &r.rope[t * hd]);
    }
    RunAttentionLayer(ArgsOf(r), pool);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t src = reverse ? T - 1 - t : t;
      for (int i = 0; i < q_dim; ++i) ASSERT_EQ(r.out[t * q_dim + i], want_out[src * q_dim + i]);
    }
  };
  rerun(pool2, false);
  rerun(pool2, true);
  const SimdLevel active = ActiveSimdLevel();
  for (SimdLevel l : SupportedSimdLevels()) {
    SetSimdLevel(l);
    rerun(pool1, false);
  }
  SetSimdLevel(active);
}

TEST(RunAttentionLayerTest, F16HeadDim32) { CheckLayer({4, 2, 32, KvCacheType::kF16}); }
TEST(RunAttentionLayerTest, F16HeadDim96) { CheckLayer({2, 2, 96, KvCacheType::kF16}); }
TEST(RunAttentionLayerTest, Q8HeadDim64) { CheckLayer({2, 1, 64, KvCacheType::kQ8_0}); }

// A batched decode step: one new token per sequence at depths 1 .. 300 (every
// number of lane chains, partial 16- and 64-position groups), plus a
// sequence with three decode-rounded rows in one tile.
const std::vector<SeqSpec> kDecodeBatch = {
    {0, 1},  {1, 1},  {7, 1},  {15, 1}, {16, 1}, {30, 1},  {47, 1},  {48, 1},
    {63, 1}, {64, 1}, {71, 1}, {97, 1}, {128, 1}, {40, 3, true}, {299, 1}};
TEST(RunAttentionLayerTest, F16DecodeHeadDim96) {
  CheckLayer({4, 2, 96, KvCacheType::kF16, kDecodeBatch});
}
TEST(RunAttentionLayerTest, F16DecodeHeadDim128) {
  CheckLayer({3, 3, 128, KvCacheType::kF16, kDecodeBatch});
}
TEST(RunAttentionLayerTest, F16DecodeHeadDim64) {
  CheckLayer({5, 1, 64, KvCacheType::kF16, kDecodeBatch});
}
TEST(RunAttentionLayerTest, Q8DecodeHeadDim96) {
  CheckLayer({2, 2, 96, KvCacheType::kQ8_0, kDecodeBatch});
}

// head_dim % 16 != 0: the untiled path, equal to AttendHead.
TEST(RunAttentionLayerTest, HeadDimNotMultipleOf16UsesAttendHead) {
  LayerSetup s = MakeLayer({2, 2, 40, KvCacheType::kF16}, 4);
  ThreadPool pool(2);
  RunAttentionLayer(ArgsOf(s), pool);
  const int hd = 40, q_dim = 80, qkv_dim = 240;
  const KvLayerView kv{KvCacheType::kF16, s.k_pool.data(), s.v_pool.data(), s.block_size,
                       s.token_bytes};
  std::vector<float> scores(256), want(hd);
  for (size_t t = 0; t < s.row_seq.size(); ++t) {
    for (int h = 0; h < 2; ++h) {
      AttendHead(GetAttentionKernels(), &s.qkv[t * qkv_dim + h * hd], kv, s.tables[s.row_seq[t]],
                 h, hd, s.row_pos[t] + 1, scores.data(), want.data());
      for (int d = 0; d < hd; ++d) ASSERT_EQ(s.out[t * q_dim + h * hd + d], want[d]);
    }
  }
}

}  // namespace
}  // namespace phi3
