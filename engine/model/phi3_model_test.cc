// Phi3Model against a naive reference forward pass (full recompute, no KV
// cache, written from the math), batching/threading invariance, and the
// loader's error paths.
#include "engine/model/phi3_model.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/kernels/quantize.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

using ::testing::HasSubstr;

struct MicroSpec {
  int n_embd = 64, n_head = 4, n_ff = 96, n_layer = 2, n_vocab = 48, n_ctx = 256;
  bool split_qkv = false;
  bool long_rope = false;  // add rope factors + original_context_length 64
  std::string arch = "phi3";
  std::string skip_key;     // omit this metadata key
  std::string skip_tensor;  // omit this tensor
  std::string bad_shape_tensor;  // give this tensor one extra row
  TensorType norm_type = TensorType::kF32;
  TensorType layer_type = TensorType::kF32;  // attn_qkv/q/k/v, attn_output, ffn_up/down
  std::string rope_scaling;  // phi3.rope.scaling.type if set
};

// The weights of the micro model, f32, row-major [rows][cols].
struct MicroWeights {
  std::vector<float> embd, output_norm, output, rope_long, rope_short;
  struct Layer {
    std::vector<float> attn_norm, qkv, wo, ffn_norm, up, down;
  };
  std::vector<Layer> layers;
};

std::vector<float> RandomVec(std::mt19937& rng, size_t n, float scale, float offset = 0.0f) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = offset + scale * d(rng);
  return v;
}

MicroWeights MakeWeights(const MicroSpec& s) {
  std::mt19937 rng(1234);
  MicroWeights w;
  const float k = 1.0f / std::sqrt(static_cast<float>(s.n_embd));
  w.embd = RandomVec(rng, s.n_vocab * s.n_embd, 1.0f);
  w.output_norm = RandomVec(rng, s.n_embd, 0.2f, 1.0f);
  w.output = RandomVec(rng, s.n_vocab * s.n_embd, 2.0f * k);
  const int head_dim = s.n_embd / s.n_head;
  w.rope_long = RandomVec(rng, head_dim / 2, 1.0f, 3.0f);
  w.rope_short = RandomVec(rng, head_dim / 2, 0.2f, 1.2f);
  for (int i = 0; i < s.n_layer; ++i) {
    MicroWeights::Layer L;
    L.attn_norm = RandomVec(rng, s.n_embd, 0.2f, 1.0f);
    L.qkv = RandomVec(rng, 3 * s.n_embd * s.n_embd, 2.0f * k);
    L.wo = RandomVec(rng, s.n_embd * s.n_embd, k);
    L.ffn_norm = RandomVec(rng, s.n_embd, 0.2f, 1.0f);
    L.up = RandomVec(rng, 2 * s.n_ff * s.n_embd, 2.0f * k);
    L.down = RandomVec(rng, s.n_embd * s.n_ff, 1.0f / std::sqrt(static_cast<float>(s.n_ff)));
    w.layers.push_back(std::move(L));
  }
  return w;
}

std::string Bytes(const std::vector<float>& v, size_t begin, size_t n, TensorType type) {
  std::string out(RowBytes(type, n), '\0');
  QuantizeRow(type, v.data() + begin, out.data(), n);
  return out;
}

std::string BuildGguf(const MicroSpec& s, const MicroWeights& w) {
  GgufWriter wr;
  auto add_u32 = [&](const std::string& key, uint32_t v) {
    if (key != s.skip_key) {
      EXPECT_TRUE(wr.AddUint32(key, v).ok());
    }
  };
  EXPECT_TRUE(wr.AddString("general.architecture", s.arch).ok());
  EXPECT_TRUE(wr.AddString("general.name", "micro").ok());
  add_u32("phi3.context_length", s.n_ctx);
  add_u32("phi3.embedding_length", s.n_embd);
  add_u32("phi3.feed_forward_length", s.n_ff);
  add_u32("phi3.block_count", s.n_layer);
  add_u32("phi3.attention.head_count", s.n_head);
  add_u32("phi3.attention.head_count_kv", s.n_head);
  add_u32("phi3.rope.dimension_count", s.n_embd / s.n_head);
  if (s.skip_key != "phi3.attention.layer_norm_rms_epsilon") {
    EXPECT_TRUE(wr.AddFloat32("phi3.attention.layer_norm_rms_epsilon", 1e-5f).ok());
  }
  EXPECT_TRUE(wr.AddFloat32("phi3.rope.freq_base", 10000.0f).ok());
  if (!s.rope_scaling.empty()) {
    EXPECT_TRUE(wr.AddString("phi3.rope.scaling.type", s.rope_scaling).ok());
  }
  if (s.long_rope) {
    add_u32("phi3.rope.scaling.original_context_length", 256);
    EXPECT_TRUE(wr.AddFloat32("phi3.rope.scaling.attn_factor", 1.19f).ok());
  }
  auto add = [&](const std::string& name, TensorType type, std::vector<int64_t> dims,
                 const std::vector<float>& v, size_t begin = 0) {
    if (name == s.skip_tensor) return;
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    if (name == s.bad_shape_tensor) {
      dims.back() += 1;
      std::vector<float> padded(v.begin() + begin, v.begin() + begin + n);
      padded.resize(n + dims[0], 0.0f);
      ASSERT_TRUE(wr.AddTensor(name, type, dims, Bytes(padded, 0, padded.size(), type)).ok());
      return;
    }
    ASSERT_TRUE(wr.AddTensor(name, type, dims, Bytes(v, begin, n, type)).ok());
  };
  const int64_t E = s.n_embd;
  add("token_embd.weight", TensorType::kF32, {E, s.n_vocab}, w.embd);
  add("output_norm.weight", s.norm_type, {E}, w.output_norm);
  add("output.weight", TensorType::kF32, {E, s.n_vocab}, w.output);
  if (s.long_rope) {
    const int64_t half = s.n_embd / s.n_head / 2;
    add("rope_factors_long.weight", TensorType::kF32, {half}, w.rope_long);
    add("rope_factors_short.weight", TensorType::kF32, {half}, w.rope_short);
  }
  for (int i = 0; i < s.n_layer; ++i) {
    const MicroWeights::Layer& L = w.layers[i];
    const std::string p = absl::StrCat("blk.", i, ".");
    add(p + "attn_norm.weight", s.norm_type, {E}, L.attn_norm);
    if (s.split_qkv) {
      add(p + "attn_q.weight", s.layer_type, {E, E}, L.qkv, 0);
      add(p + "attn_k.weight", s.layer_type, {E, E}, L.qkv, E * E);
      add(p + "attn_v.weight", s.layer_type, {E, E}, L.qkv, 2 * E * E);
    } else {
      add(p + "attn_qkv.weight", s.layer_type, {E, 3 * E}, L.qkv);
    }
    add(p + "attn_output.weight", s.layer_type, {E, E}, L.wo);
    add(p + "ffn_norm.weight", s.norm_type, {E}, L.ffn_norm);
    add(p + "ffn_up.weight", s.layer_type, {E, 2 * s.n_ff}, L.up);
    add(p + "ffn_down.weight", s.layer_type, {s.n_ff, E}, L.down);
  }
  absl::StatusOr<std::string> bytes = wr.WriteToString();
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : std::string();
}

// ---- reference: plain f32 math (f16 rounding where llama.cpp rounds) -------

float F16Round(float x) { return F16ToF32(F32ToF16(x)); }

void MatVec(const std::vector<float>& w, size_t begin, int rows, int cols, const float* x,
            float* y) {
  for (int r = 0; r < rows; ++r) {
    double s = 0.0;
    for (int c = 0; c < cols; ++c) s += static_cast<double>(w[begin + r * cols + c]) * x[c];
    y[r] = static_cast<float>(s);
  }
}

void RefNorm(const float* x, const std::vector<float>& g, int n, float* y) {
  double ss = 0.0;
  for (int i = 0; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + 1e-5f);
  for (int i = 0; i < n; ++i) y[i] = x[i] * scale * g[i];
}

// Logits of the last token of `tokens`, rope factors `factors` (or none).
std::vector<float> ReferenceLogits(const MicroSpec& s, const MicroWeights& w,
                                   const std::vector<int32_t>& tokens,
                                   const std::vector<float>* factors, float mscale) {
  const int E = s.n_embd, H = s.n_head, D = E / H, F = s.n_ff, T = tokens.size();
  std::vector<std::vector<float>> x(T, std::vector<float>(E));
  for (int t = 0; t < T; ++t) {
    std::copy_n(&w.embd[tokens[t] * E], E, x[t].begin());
  }
  std::vector<float> xn(E), qkv(3 * E), att(E), tmp(E), up(2 * F), act(F);
  for (const MicroWeights::Layer& L : w.layers) {
    std::vector<std::vector<float>> q(T), k(T), v(T);
    for (int t = 0; t < T; ++t) {
      RefNorm(x[t].data(), L.attn_norm, E, xn.data());
      MatVec(L.qkv, 0, 3 * E, E, xn.data(), qkv.data());
      q[t].assign(qkv.begin(), qkv.begin() + E);
      k[t].assign(qkv.begin() + E, qkv.begin() + 2 * E);
      v[t].assign(qkv.begin() + 2 * E, qkv.end());
      for (int h = 0; h < H; ++h) {
        for (int i = 0; i < D / 2; ++i) {
          const double inv_freq = std::pow(10000.0, -2.0 * i / D) /
                                  (factors != nullptr ? (*factors)[i] : 1.0f);
          const double th = t * inv_freq;
          const float c = std::cos(th) * mscale, sn = std::sin(th) * mscale;
          for (auto* vec : {&q[t], &k[t]}) {
            float& a = (*vec)[h * D + i];
            float& b = (*vec)[h * D + i + D / 2];
            const float a0 = a, b0 = b;
            a = a0 * c - b0 * sn;
            b = a0 * sn + b0 * c;
          }
        }
      }
      for (float& e : q[t]) e = F16Round(e / std::sqrt(static_cast<float>(D)));
      for (float& e : k[t]) e = F16Round(e);
      for (float& e : v[t]) e = F16Round(e);
    }
    for (int t = 0; t < T; ++t) {
      for (int h = 0; h < H; ++h) {
        std::vector<double> sc(t + 1);
        double mx = -1e30;
        for (int u = 0; u <= t; ++u) {
          double d = 0;
          for (int i = 0; i < D; ++i) d += q[t][h * D + i] * k[u][h * D + i];
          sc[u] = d;
          mx = std::max(mx, d);
        }
        double sum = 0;
        for (double& e : sc) sum += (e = std::exp(e - mx));
        for (int i = 0; i < D; ++i) {
          double o = 0;
          for (int u = 0; u <= t; ++u) o += F16Round(sc[u] / sum) * v[u][h * D + i];
          att[h * D + i] = o;
        }
      }
      MatVec(L.wo, 0, E, E, att.data(), tmp.data());
      for (int i = 0; i < E; ++i) x[t][i] += tmp[i];
    }
    for (int t = 0; t < T; ++t) {
      RefNorm(x[t].data(), L.ffn_norm, E, xn.data());
      MatVec(L.up, 0, 2 * F, E, xn.data(), up.data());
      for (int i = 0; i < F; ++i) act[i] = up[i] / (1.0f + std::exp(-up[i])) * up[F + i];
      MatVec(L.down, 0, E, F, act.data(), tmp.data());
      for (int i = 0; i < E; ++i) x[t][i] += tmp[i];
    }
  }
  RefNorm(x[T - 1].data(), w.output_norm, E, xn.data());
  std::vector<float> logits(s.n_vocab);
  MatVec(w.output, 0, s.n_vocab, E, xn.data(), logits.data());
  return logits;
}

// ---- helpers -----------------------------------------------------------------

struct Loaded {
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Phi3Model> model;
};

absl::StatusOr<Loaded> LoadMicro(const MicroSpec& spec, const MicroWeights& w,
                                 ModelOptions options = {}) {
  Loaded l;
  absl::StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::OpenBuffer(BuildGguf(spec, w));
  if (!f.ok()) return f.status();
  l.file = *std::move(f);
  if (options.num_threads == 0) options.num_threads = 2;
  absl::StatusOr<std::unique_ptr<Phi3Model>> m = Phi3Model::Load(*l.file, options);
  if (!m.ok()) return m.status();
  l.model = *std::move(m);
  return l;
}

absl::Status LoadStatus(const MicroSpec& spec) {
  return LoadMicro(spec, MakeWeights(spec)).status();
}

std::vector<int32_t> Prompt(int n, int vocab, int salt) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 7 + salt * 13 + 1) % vocab;
  return t;
}

// Runs tokens through `model` in chunks of `chunk` tokens (one sequence,
// blocks 0..), returning the logits after the last chunk.
// one_evaluation: the chunks name the whole sequence as their llama.cpp
// evaluation (forward.h "Rounding"); else each chunk is its own.
std::vector<float> RunChunked(Phi3Model& model, const std::vector<int32_t>& tokens, int chunk,
                              const std::vector<int32_t>& blocks, bool one_evaluation = false) {
  std::vector<float> logits(model.vocab_size());
  for (size_t p = 0; p < tokens.size(); p += chunk) {
    ForwardBatch b;
    SequenceSlice s;
    const size_t n = std::min<size_t>(chunk, tokens.size() - p);
    s.tokens = std::span<const int32_t>(tokens.data() + p, n);
    s.start_pos = p;
    s.block_table = blocks;
    s.want_logits = p + n == tokens.size();
    if (one_evaluation) s.eval_end = static_cast<int32_t>(tokens.size());
    b.sequences.push_back(s);
    absl::Status st = model.Forward(b, logits);
    EXPECT_TRUE(st.ok()) << st;
  }
  return logits;
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

std::vector<int32_t> Iota(int begin, int n) {
  std::vector<int32_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = begin + i;
  return v;
}

// ---- tests ---------------------------------------------------------------------

TEST(Phi3ModelTest, MatchesReferenceForward) {
  MicroSpec spec;
  MicroWeights w = MakeWeights(spec);
  absl::StatusOr<Loaded> l = LoadMicro(spec, w);
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_TRUE(l->model->InitKvCache(16, 8, KvCacheType::kF16).ok());
  const std::vector<int32_t> tokens = Prompt(37, spec.n_vocab, 0);
  std::vector<float> got = RunChunked(*l->model, tokens, 37, Iota(0, 5));
  std::vector<float> want = ReferenceLogits(spec, w, tokens, nullptr, 1.0f);
  EXPECT_LT(MaxAbsDiff(got, want), 2e-4);
  float spread = 0;
  for (float v : want) spread = std::max(spread, std::fabs(v));
  EXPECT_GT(spread, 0.5f);  // the comparison is not vacuous
}

TEST(Phi3ModelTest, ChunkingBatchingAndThreadsDoNotChangeLogits) {
  MicroSpec spec;
  MicroWeights w = MakeWeights(spec);
  const std::vector<int32_t> a = Prompt(29, spec.n_vocab, 1);
  const std::vector<int32_t> b = Prompt(11, spec.n_vocab, 2);

  absl::StatusOr<Loaded> one = LoadMicro(spec, w, {.num_threads = 1});
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(one->model->InitKvCache(16, 4, KvCacheType::kF16).ok());
  const std::vector<float> a_full = RunChunked(*one->model, a, 29, Iota(0, 8));
  const std::vector<float> a_decode = RunChunked(*one->model, a, 1, Iota(8, 8));
  const std::vector<float> b_full = RunChunked(*one->model, b, 11, Iota(0, 3));
  EXPECT_EQ(a_full, a_decode);

  // a's last 5 tokens and all of b in one 3-thread step, a's prefix cached.
  absl::StatusOr<Loaded> three = LoadMicro(spec, w, {.num_threads = 3});
  ASSERT_TRUE(three.ok()) << three.status();
  ASSERT_TRUE(three->model->InitKvCache(16, 4, KvCacheType::kF16).ok());
  const std::vector<int32_t> a_blocks = {9, 3, 5, 7, 1, 11, 13, 15};
  const std::vector<int32_t> b_blocks = {2, 4, 6};
  std::vector<int32_t> a_prefix(a.begin(), a.end() - 5);
  RunChunked(*three->model, a_prefix, 24, a_blocks);
  ForwardBatch batch;
  batch.sequences.push_back({std::span<const int32_t>(b), 0, b_blocks, true});
  batch.sequences.push_back({std::span<const int32_t>(a).subspan(24), 24, a_blocks, true});
  std::vector<float> logits(2 * spec.n_vocab);
  ASSERT_TRUE(three->model->Forward(batch, logits).ok());
  EXPECT_EQ(std::vector<float>(logits.begin(), logits.begin() + spec.n_vocab), b_full);
  EXPECT_EQ(std::vector<float>(logits.begin() + spec.n_vocab, logits.end()), a_full);
}

// Q4_K rounds llama.cpp's prompt tokens in groups of 4 differently from
// single tokens: a prompt's logits depend on its evaluation range, not on how
// the scheduler chunks it or on the other sequences of a step.
TEST(Phi3ModelTest, PromptRoundingFollowsTheEvaluation) {
  MicroSpec spec;
  spec.n_embd = 256;  // Q4_K rows hold 256-element super-blocks
  spec.n_head = 8;
  spec.n_ff = 256;
  spec.layer_type = TensorType::kQ4_K;
  MicroWeights w = MakeWeights(spec);
  absl::StatusOr<Loaded> l = LoadMicro(spec, w, {.num_threads = 2});
  ASSERT_TRUE(l.ok()) << l.status();
  Phi3Model& m = *l->model;
  ASSERT_TRUE(m.InitKvCache(16, 4, KvCacheType::kF16).ok());
  // 12 tokens = 3 gemm groups: the last token's own products differ too.
  const std::vector<int32_t> a = Prompt(12, spec.n_vocab, 5);
  const std::vector<int32_t> b = Prompt(6, spec.n_vocab, 6);
  const std::vector<int32_t> a_blocks = Iota(0, 4), b_blocks = Iota(4, 2);
  const std::vector<float> whole = RunChunked(m, a, 12, a_blocks);
  EXPECT_EQ(RunChunked(m, a, 3, a_blocks, /*one_evaluation=*/true), whole);
  EXPECT_EQ(RunChunked(m, a, 5, a_blocks, /*one_evaluation=*/true), whole);
  // Chunks of 3 evaluated as prompts of their own: no gemm group at all.
  EXPECT_NE(RunChunked(m, a, 3, a_blocks), whole);
  const std::vector<float> b_whole = RunChunked(m, b, 6, b_blocks);

  // One step holding b's second chunk (of the evaluation [0, 6)) and a
  // decode token of a: each as if alone.
  auto forward = [&](std::vector<SequenceSlice> slices, int rows) {
    ForwardBatch batch;
    batch.sequences = std::move(slices);
    std::vector<float> logits(rows * spec.n_vocab);
    absl::Status st = m.Forward(batch, logits);
    EXPECT_TRUE(st.ok()) << st;
    return logits;
  };
  std::vector<int32_t> a_next = a;
  a_next.push_back(7);
  const std::span<const int32_t> a_tail = std::span<const int32_t>(a_next).subspan(12);
  RunChunked(m, a, 12, a_blocks);
  const std::vector<float> decode_alone = forward({{a_tail, 12, a_blocks, true}}, 1);
  forward({{std::span<const int32_t>(b).first(3), 0, b_blocks, false, 0, 6}}, 0);
  const std::vector<float> both = forward(
      {{std::span<const int32_t>(b).subspan(3), 3, b_blocks, true, 0, 6},
       {a_tail, 12, a_blocks, true}},
      2);
  EXPECT_EQ(std::vector<float>(both.begin(), both.begin() + spec.n_vocab), b_whole);
  EXPECT_EQ(std::vector<float>(both.begin() + spec.n_vocab, both.end()), decode_alone);
}

// Q4_0/Q4_1/Q8_0/Q4_K/Q5_K/Q6_K matrices are repacked at load (WeightView::matrix());
// the packed kernels must give the row-major kernels' numbers bit for bit,
// for a prompt (Q4_K gemm groups and tail) and for decode steps. F16/BF16
// ones are copied (row-major, onto huge pages): the same numbers too.
TEST(Phi3ModelTest, PackedWeightsGiveTheRowMajorLogits) {
  for (TensorType type : {TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ8_0,
                          TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K,
                          TensorType::kF16, TensorType::kBF16}) {
    SCOPED_TRACE(TensorTypeName(type));
    MicroSpec spec;
    spec.n_embd = 256;  // Q4_K rows hold 256-element super-blocks
    spec.n_head = 8;
    spec.n_ff = 256;
    spec.layer_type = type;
    MicroWeights w = MakeWeights(spec);
    absl::StatusOr<Loaded> packed = LoadMicro(spec, w, {.num_threads = 2});
    absl::StatusOr<Loaded> plain = LoadMicro(spec, w, {.num_threads = 2, .pack_weights = false});
    ASSERT_TRUE(packed.ok() && plain.ok());
    const Phi3LayerWeights& pl = packed->model->weights().layers[0];
    // The test is not vacuous: the packed model reads its own copies.
    ASSERT_NE(pl.qkv.packed.data, nullptr);
    ASSERT_NE(pl.ffn_down.packed.data, nullptr);
    const bool is_float = type == TensorType::kF16 || type == TensorType::kBF16;
    ASSERT_EQ(pl.qkv.matrix().layout, is_float ? WeightLayout::kRowMajor : WeightLayout::kPacked16);
    ASSERT_EQ(plain->model->weights().layers[0].qkv.matrix().layout, WeightLayout::kRowMajor);
    ASSERT_TRUE(packed->model->InitKvCache(8, 4, KvCacheType::kF16).ok());
    ASSERT_TRUE(plain->model->InitKvCache(8, 4, KvCacheType::kF16).ok());
    const std::vector<int32_t> t = Prompt(23, spec.n_vocab, 4);
    EXPECT_EQ(RunChunked(*packed->model, t, 23, Iota(0, 6)),
              RunChunked(*plain->model, t, 23, Iota(0, 6)));
    EXPECT_EQ(RunChunked(*packed->model, t, 1, Iota(0, 6)),
              RunChunked(*plain->model, t, 1, Iota(0, 6)));
  }
}

TEST(Phi3ModelTest, SplitQkvEqualsFused) {
  MicroSpec fused, split;
  split.split_qkv = true;
  MicroWeights w = MakeWeights(fused);
  absl::StatusOr<Loaded> f = LoadMicro(fused, w);
  absl::StatusOr<Loaded> s = LoadMicro(split, w);
  ASSERT_TRUE(f.ok() && s.ok());
  EXPECT_FALSE(s->model->weights().layers[0].fused_qkv());
  ASSERT_TRUE(f->model->InitKvCache(4, 16, KvCacheType::kF16).ok());
  ASSERT_TRUE(s->model->InitKvCache(4, 16, KvCacheType::kF16).ok());
  const std::vector<int32_t> t = Prompt(20, fused.n_vocab, 3);
  EXPECT_EQ(RunChunked(*f->model, t, 20, Iota(0, 2)), RunChunked(*s->model, t, 20, Iota(0, 2)));
}

TEST(Phi3ModelTest, LongRopeFactorsFollowContextSize) {
  MicroSpec spec;
  spec.long_rope = true;
  spec.n_ctx = 1024;
  MicroWeights w = MakeWeights(spec);
  const std::vector<int32_t> t = Prompt(30, spec.n_vocab, 4);
  std::vector<std::vector<float>> results;
  for (int ctx : {200, 257}) {
    absl::StatusOr<Loaded> l = LoadMicro(spec, w, {.context_size = ctx});
    ASSERT_TRUE(l.ok()) << l.status();
    // llama.cpp pads n_ctx to a multiple of 256 before comparing.
    const bool want_long = ctx > 256;
    EXPECT_EQ(l->model->uses_long_rope_factors(), want_long);
    ASSERT_TRUE(l->model->InitKvCache(4, 16, KvCacheType::kF16).ok());
    std::vector<float> got = RunChunked(*l->model, t, 30, Iota(0, 2));
    std::vector<float> want =
        ReferenceLogits(spec, w, t, want_long ? &w.rope_long : &w.rope_short, 1.19f);
    EXPECT_LT(MaxAbsDiff(got, want), 2e-4) << "ctx " << ctx;
    results.push_back(got);
  }
  EXPECT_GT(MaxAbsDiff(results[0], results[1]), 1e-2);
}

TEST(Phi3ModelTest, Q8KvCacheIsClose) {
  MicroSpec spec;
  spec.n_embd = 128;  // head_dim 32
  MicroWeights w = MakeWeights(spec);
  absl::StatusOr<Loaded> l = LoadMicro(spec, w);
  ASSERT_TRUE(l.ok());
  const std::vector<int32_t> t = Prompt(25, spec.n_vocab, 5);
  ASSERT_TRUE(l->model->InitKvCache(4, 16, KvCacheType::kQ8_0).ok());
  std::vector<float> q8 = RunChunked(*l->model, t, 25, Iota(0, 2));
  EXPECT_LT(MaxAbsDiff(q8, ReferenceLogits(spec, w, t, nullptr, 1.0f)), 0.1);
  EXPECT_EQ(l->model->KvBytesPerToken(KvCacheType::kQ8_0), 2 * 2 * 4 * 34);
  EXPECT_EQ(l->model->KvBytesPerToken(KvCacheType::kF16), 2 * 2 * 128 * 2);
}

TEST(Phi3ModelTest, LoaderErrorsNameTheProblem) {
  MicroSpec s;
  s.arch = "llama";
  absl::Status st = LoadStatus(s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("\"llama\", expected \"phi3\""));

  s = MicroSpec();
  s.skip_key = "phi3.block_count";
  st = LoadStatus(s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("phi3.block_count"));

  s = MicroSpec();
  s.skip_key = "phi3.attention.layer_norm_rms_epsilon";
  EXPECT_THAT(LoadStatus(s).message(), HasSubstr("layer_norm_rms_epsilon"));

  s = MicroSpec();
  s.skip_tensor = "blk.1.ffn_down.weight";
  st = LoadStatus(s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("missing tensor 'blk.1.ffn_down.weight'"));

  s = MicroSpec();
  s.skip_tensor = "blk.0.attn_qkv.weight";
  EXPECT_THAT(LoadStatus(s).message(), HasSubstr("blk.0.attn_qkv.weight"));

  s = MicroSpec();
  s.bad_shape_tensor = "blk.0.ffn_up.weight";
  st = LoadStatus(s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(),
              HasSubstr("'blk.0.ffn_up.weight' has shape [64, 193], expected [64, 192]"));

  s = MicroSpec();
  s.norm_type = TensorType::kQ8_0;
  s.n_embd = 64;
  st = LoadStatus(s);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(st.message(), HasSubstr("q8_0"));

  s = MicroSpec();
  s.rope_scaling = "yarn";
  EXPECT_EQ(LoadStatus(s).code(), absl::StatusCode::kUnimplemented);

  s = MicroSpec();
  EXPECT_EQ(LoadMicro(s, MakeWeights(s), {.context_size = 257}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ForwardBatch::abandoned is polled between layers: a step abandoned after
// its first layer returns CANCELLED; what it half wrote (other tokens at the
// same positions) is overwritten by the next step there, whose logits are
// those of a model that never ran it.
TEST(Phi3ModelTest, AbandonedStepStopsBetweenLayers) {
  MicroSpec spec;
  MicroWeights w = MakeWeights(spec);
  absl::StatusOr<Loaded> l = LoadMicro(spec, w);
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_TRUE(l->model->InitKvCache(16, 4, KvCacheType::kF16).ok());
  const std::vector<int32_t> tokens = Prompt(13, spec.n_vocab, 3);
  const std::vector<int32_t> blocks = Iota(0, 4);
  const std::vector<float> want = RunChunked(*l->model, tokens, 8, blocks);

  const std::vector<int32_t> other = Prompt(5, spec.n_vocab, 4);
  ForwardBatch abandoned;
  abandoned.sequences.push_back({other, 8, blocks, true});
  int polls = 0;
  abandoned.abandoned = [&polls] { return ++polls > 1; };  // after the first layer
  std::vector<float> logits(spec.n_vocab);
  absl::Status st = l->model->Forward(abandoned, logits);
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled) << st;
  EXPECT_EQ(polls, 2);

  ForwardBatch again;
  again.sequences.push_back({std::span<const int32_t>(tokens).subspan(8), 8, blocks, true});
  polls = 0;
  again.abandoned = [&polls] { return ++polls < 0; };  // never
  ASSERT_TRUE(l->model->Forward(again, logits).ok());
  EXPECT_EQ(polls, spec.n_layer);
  EXPECT_EQ(logits, want);
}

TEST(Phi3ModelTest, ForwardRejectsBadBatches) {
  MicroSpec spec;
  MicroWeights w = MakeWeights(spec);
  absl::StatusOr<Loaded> l = LoadMicro(spec, w, {.context_size = 64});
  ASSERT_TRUE(l.ok());
  Phi3Model& m = *l->model;
  std::vector<float> logits(spec.n_vocab);
  const std::vector<int32_t> tokens = {1, 2, 3};
  const std::vector<int32_t> blocks = {0};
  ForwardBatch b;
  b.sequences.push_back({tokens, 0, blocks, true});
  EXPECT_EQ(m.Forward(b, logits).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(m.InitKvCache(2, 4, KvCacheType::kF16).ok());
  EXPECT_TRUE(m.Forward(b, logits).ok());

  const std::vector<int32_t> bad_token = {1, 48};
  b.sequences[0].tokens = bad_token;
  EXPECT_THAT(m.Forward(b, logits).message(), HasSubstr("token id 48"));
  b.sequences[0].tokens = tokens;
  b.sequences[0].start_pos = 2;  // positions up to 5 need 2 blocks of 4
  EXPECT_THAT(m.Forward(b, logits).message(), HasSubstr("block table"));
  const std::vector<int32_t> bad_blocks = {0, 2};
  b.sequences[0].block_table = bad_blocks;
  EXPECT_THAT(m.Forward(b, logits).message(), HasSubstr("block_table[1] = 2"));
  b.sequences[0].start_pos = 62;
  EXPECT_THAT(m.Forward(b, logits).message(), HasSubstr("outside the context"));
  std::vector<float> small(spec.n_vocab - 1);
  b.sequences[0].start_pos = 0;
  b.sequences[0].block_table = blocks;
  EXPECT_THAT(m.Forward(b, small).message(), HasSubstr("logits span"));
  b.sequences[0].eval_begin = 1;
  b.sequences[0].eval_end = 3;
  EXPECT_THAT(m.Forward(b, logits).message(),
              HasSubstr("evaluation [1, 3) does not contain the new positions [0, 3)"));
}

}  // namespace
}  // namespace phi3
