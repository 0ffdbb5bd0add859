#include "engine/tools/mkmodel/phi3_model_writer.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/gguf/gguf_file.h"
#include "engine/kernels/quantize.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& tag) {
  return ::testing::TempDir() + "/mkmodel_test_" + std::to_string(getpid()) + "_" + tag + ".gguf";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Phi3ModelOptions Tiny(WeightFormat format) {
  Phi3ModelOptions o;
  o.dims = *Phi3PresetDims("tiny");
  o.format = format;
  o.seed = 7;
  o.num_threads = 2;
  return o;
}

std::vector<float> RowValues(const GgufTensor& t, int64_t row) {
  std::vector<float> out(t.dims[0]);
  DequantizeRow(t.type, t.data + row * RowBytes(t.type, t.dims[0]), out.data(), t.dims[0]);
  return out;
}

TEST(Phi3ModelWriterTest, TinyHasLlamaCppKeysAndTensors) {
  const std::string path = TempPath("tiny");
  Phi3ModelOptions o = Tiny(WeightFormat::kF16);
  ASSERT_TRUE(WritePhi3Model(o, path).ok());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  EXPECT_EQ(*g.GetString("general.architecture"), "phi3");
  EXPECT_THAT(*g.GetString("general.name"), HasSubstr("Phi-3"));
  EXPECT_EQ(*g.GetUint32("phi3.context_length"), 4096u);
  EXPECT_EQ(*g.GetUint32("phi3.embedding_length"), 256u);
  EXPECT_EQ(*g.GetUint32("phi3.feed_forward_length"), 512u);
  EXPECT_EQ(*g.GetUint32("phi3.block_count"), 2u);
  EXPECT_EQ(*g.GetUint32("phi3.attention.head_count"), 8u);
  EXPECT_EQ(*g.GetUint32("phi3.attention.head_count_kv"), 8u);
  EXPECT_EQ(*g.GetUint32("phi3.rope.dimension_count"), 32u);
  EXPECT_EQ(*g.GetFloat32("phi3.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(*g.GetFloat32("phi3.rope.freq_base"), 10000.0f);
  EXPECT_EQ(*g.GetUint32("phi3.attention.sliding_window"), 2047u);
  EXPECT_EQ(*g.GetUint32("general.file_type"), 1u);
  EXPECT_EQ(*g.GetString("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(g.GetStringArray("tokenizer.ggml.tokens")->size(), 32064u);
  EXPECT_EQ((*g.GetStringArray("tokenizer.ggml.tokens"))[32007], "<|end|>");
  EXPECT_EQ((*g.GetInt32Array("tokenizer.ggml.token_type"))[32007], 3);  // CONTROL
  EXPECT_EQ(*g.GetUint32("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_THAT(*g.GetString("tokenizer.chat_template"), HasSubstr("<|assistant|>"));
  EXPECT_FALSE(g.Has("phi3.rope.scaling.attn_factor"));

  ASSERT_EQ(g.tensors().size(), 1u + 2 * 6 + 2);
  const GgufTensor* embd = g.FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->type, TensorType::kF16);
  EXPECT_EQ(embd->dims, (std::vector<int64_t>{256, 32064}));
  EXPECT_EQ(g.FindTensor("blk.1.attn_qkv.weight")->dims, (std::vector<int64_t>{256, 768}));
  EXPECT_EQ(g.FindTensor("blk.1.attn_output.weight")->dims, (std::vector<int64_t>{256, 256}));
  EXPECT_EQ(g.FindTensor("blk.0.ffn_up.weight")->dims, (std::vector<int64_t>{256, 1024}));
  EXPECT_EQ(g.FindTensor("blk.0.ffn_down.weight")->dims, (std::vector<int64_t>{512, 256}));
  EXPECT_EQ(g.FindTensor("output.weight")->dims, (std::vector<int64_t>{256, 32064}));
  for (const char* norm : {"blk.0.attn_norm.weight", "blk.1.ffn_norm.weight", "output_norm.weight"}) {
    ASSERT_NE(g.FindTensor(norm), nullptr) << norm;
    EXPECT_EQ(g.FindTensor(norm)->type, TensorType::kF32) << norm;
    EXPECT_EQ(g.FindTensor(norm)->dims, (std::vector<int64_t>{256})) << norm;
  }
  // Scales: embeddings ~unit RMS, norms ~1.
  const std::vector<float> e = RowValues(*embd, 123);
  double ss = 0;
  for (float x : e) ss += x * x;
  EXPECT_NEAR(std::sqrt(ss / e.size()), 1.0, 0.15);
  const float* norm = reinterpret_cast<const float*>(g.FindTensor("output_norm.weight")->data);
  for (int i = 0; i < 256; ++i) EXPECT_NEAR(norm[i], 1.0f, 0.6f);
  std::filesystem::remove(path);
}

TEST(Phi3ModelWriterTest, SameSeedSameBytesAcrossThreadCounts) {
  Phi3ModelOptions o = Tiny(WeightFormat::kQ4_0);
  o.dims.n_layer = 1;
  const std::string a = TempPath("a"), b = TempPath("b"), c = TempPath("c");
  ASSERT_TRUE(WritePhi3Model(o, a).ok());
  o.num_threads = 1;
  ASSERT_TRUE(WritePhi3Model(o, b).ok());
  o.seed = 8;
  ASSERT_TRUE(WritePhi3Model(o, c).ok());
  const std::string ba = ReadAll(a), bb = ReadAll(b), bc = ReadAll(c);
  EXPECT_GT(ba.size(), 1000000u);
  EXPECT_TRUE(ba == bb);
  EXPECT_EQ(ba.size(), bc.size());
  EXPECT_FALSE(ba == bc);
  for (const auto& p : {a, b, c}) std::filesystem::remove(p);
}

TEST(Phi3ModelWriterTest, Q4KMMixFollowsLlamaQuantize) {
  Phi3ModelOptions o = Tiny(WeightFormat::kQ4_K_M);
  auto plan = PlanPhi3Tensors(o);
  ASSERT_TRUE(plan.ok());
  auto type_of = [&](const std::string& name) {
    for (const auto& p : *plan) {
      if (p.name == name) return p.type;
    }
    ADD_FAILURE() << name;
    return TensorType::kF32;
  };
  EXPECT_EQ(type_of("token_embd.weight"), TensorType::kQ4_K);
  EXPECT_EQ(type_of("output.weight"), TensorType::kQ6_K);
  EXPECT_EQ(type_of("blk.0.attn_qkv.weight"), TensorType::kQ5_K);
  EXPECT_EQ(type_of("blk.0.attn_output.weight"), TensorType::kQ4_K);
  EXPECT_EQ(type_of("blk.0.ffn_up.weight"), TensorType::kQ4_K);
  EXPECT_EQ(type_of("blk.0.ffn_down.weight"), TensorType::kQ4_K);
  EXPECT_EQ(type_of("blk.1.ffn_down.weight"), TensorType::kQ6_K);
  EXPECT_EQ(type_of("blk.1.ffn_norm.weight"), TensorType::kF32);

  // Full Phi-3-mini: ffn_down is Q6_K in llama-quantize's use_more_bits layers.
  o.dims = *Phi3PresetDims("phi3-mini");
  plan = PlanPhi3Tensors(o);
  ASSERT_TRUE(plan.ok());
  std::vector<int> q6_layers;
  for (int i = 0; i < 32; ++i) {
    if (type_of("blk." + std::to_string(i) + ".ffn_down.weight") == TensorType::kQ6_K) {
      q6_layers.push_back(i);
    }
  }
  EXPECT_EQ(q6_layers, (std::vector<int>{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}));
  EXPECT_EQ(plan->size(), 1u + 32 * 6 + 2);
}

TEST(Phi3ModelWriterTest, SplitQkvHoldsTheFusedRows) {
  Phi3ModelOptions o = Tiny(WeightFormat::kF32);
  o.dims.n_layer = 1;
  const std::string fused = TempPath("fused"), split = TempPath("split");
  ASSERT_TRUE(WritePhi3Model(o, fused).ok());
  o.split_qkv = true;
  ASSERT_TRUE(WritePhi3Model(o, split).ok());
  auto f = GgufFile::Open(fused);
  auto s = GgufFile::Open(split);
  ASSERT_TRUE(f.ok() && s.ok());
  EXPECT_EQ((*s)->FindTensor("blk.0.attn_qkv.weight"), nullptr);
  const GgufTensor* qkv = (*f)->FindTensor("blk.0.attn_qkv.weight");
  const uint64_t part = 256 * 256 * 4;
  int i = 0;
  for (const char* name : {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight"}) {
    const GgufTensor* t = (*s)->FindTensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dims, (std::vector<int64_t>{256, 256}));
    EXPECT_EQ(std::memcmp(t->data, qkv->data + part * i++, part), 0) << name;
  }
  std::filesystem::remove(fused);
  std::filesystem::remove(split);
}

TEST(Phi3ModelWriterTest, LongRopePresetAndUserDefinedTokens) {
  Phi3ModelOptions o = Tiny(WeightFormat::kQ8_0);
  o.dims = *Phi3PresetDims("phi3-mini-128k");
  o.dims.n_embd = 256;
  o.dims.n_ff = 512;
  o.dims.n_layer = 1;
  o.dims.n_head = o.dims.n_head_kv = 8;
  o.added_token_kind = AddedTokenKind::kUserDefined;
  const std::string path = TempPath("128k");
  ASSERT_TRUE(WritePhi3Model(o, path).ok());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  EXPECT_EQ(*g.GetUint32("phi3.context_length"), 131072u);
  EXPECT_EQ(*g.GetUint32("phi3.rope.scaling.original_context_length"), 4096u);
  EXPECT_NEAR(*g.GetFloat32("phi3.rope.scaling.attn_factor"), 1.1902380714238083, 1e-6);
  const GgufTensor* lng = g.FindTensor("rope_factors_long.weight");
  const GgufTensor* sht = g.FindTensor("rope_factors_short.weight");
  ASSERT_NE(lng, nullptr);
  ASSERT_NE(sht, nullptr);
  EXPECT_EQ(lng->type, TensorType::kF32);
  EXPECT_EQ(lng->dims, (std::vector<int64_t>{16}));
  EXPECT_EQ(reinterpret_cast<const float*>(lng->data)[0], 1.08f);
  EXPECT_EQ(reinterpret_cast<const float*>(sht->data)[15], Phi3ShortRopeFactors(32)[15]);
  EXPECT_EQ(Phi3LongRopeFactors(96).size(), 48u);
  EXPECT_EQ(Phi3LongRopeFactors(96)[47], 64.84f);
  EXPECT_EQ((*g.GetInt32Array("tokenizer.ggml.token_type"))[32010], 4);  // USER_DEFINED
  std::filesystem::remove(path);
}

TEST(Phi3ModelWriterTest, RefusesBadDims) {
  Phi3ModelOptions o = Tiny(WeightFormat::kQ4_K);
  o.dims.n_embd = 128;
  o.dims.n_head = o.dims.n_head_kv = 4;
  auto plan = PlanPhi3Tensors(o);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(plan.status().message()),
              HasSubstr("n_embd = 128 is not a multiple of 256, the block size of --type q4_k"));
  o = Tiny(WeightFormat::kF32);
  o.dims.n_head = 7;
  EXPECT_THAT(std::string(PlanPhi3Tensors(o).status().message()), HasSubstr("n_head (7)"));
  EXPECT_FALSE(Phi3PresetDims("phi4").ok());
  EXPECT_FALSE(ParseWeightFormat("iq2_xxs").ok());
  EXPECT_EQ(*ParseWeightFormat("Q4_K_M"), WeightFormat::kQ4_K_M);
}

}  // namespace
}  // namespace phi3
