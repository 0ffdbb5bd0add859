#include "engine/tokenizer/vocab_data.h"

#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

TEST(VocabDataTest, RowsTypesAndScoresFollowTheConverter) {
  const VocabData v = Phi3Vocab(AddedTokenKind::kControl);
  ASSERT_EQ(v.tokens.size(), static_cast<size_t>(kPhi3VocabRows));
  ASSERT_EQ(v.scores.size(), v.tokens.size());
  ASSERT_EQ(v.token_types.size(), v.tokens.size());
  EXPECT_EQ(v.tokens[0], "<unk>");
  EXPECT_EQ(v.token_types[0], kTokenTypeUnknown);
  EXPECT_EQ(v.tokens[1], "<s>");
  EXPECT_EQ(v.token_types[1], kTokenTypeControl);
  EXPECT_EQ(v.tokens[2], "</s>");
  EXPECT_EQ(v.tokens[3], "<0x00>");
  EXPECT_EQ(v.tokens[13], "<0x0A>");
  EXPECT_EQ(v.token_types[258], kTokenTypeByte);
  EXPECT_EQ(v.scores[258], 0.0f);
  EXPECT_EQ(v.tokens[259], "\xE2\x96\x81\xE2\x96\x81");  // "▁▁"
  EXPECT_EQ(v.scores[259], -1e9f);
  EXPECT_EQ(v.tokens[260], "\xE2\x96\x81t");  // "▁t"
  EXPECT_EQ(v.scores[260], -1.0f);
  EXPECT_EQ(v.tokens[2104], ";\r");
  EXPECT_EQ(v.tokens[29871], "\xE2\x96\x81");  // "▁"
  EXPECT_EQ(v.scores[29871], -29612.0f);
  EXPECT_EQ(v.token_types[29871], kTokenTypeNormal);
  EXPECT_EQ(v.tokens[kPhi3EndOfTextId], "<|endoftext|>");
  EXPECT_EQ(v.tokens[kPhi3AssistantId], "<|assistant|>");
  EXPECT_EQ(v.tokens[32002], "<|placeholder1|>");
  EXPECT_EQ(v.tokens[kPhi3SystemId], "<|system|>");
  EXPECT_EQ(v.tokens[kPhi3EndId], "<|end|>");
  EXPECT_EQ(v.tokens[32009], "<|placeholder6|>");
  EXPECT_EQ(v.tokens[kPhi3UserId], "<|user|>");
  for (int id = 32000; id <= 32010; ++id) {
    EXPECT_EQ(v.token_types[id], kTokenTypeControl) << id;
    EXPECT_EQ(v.scores[id], -1000.0f) << id;
  }
  EXPECT_EQ(v.tokens[32011], "[PAD32011]");
  EXPECT_EQ(v.tokens[32063], "[PAD32063]");
  EXPECT_EQ(v.token_types[32063], kTokenTypeUnused);
  EXPECT_EQ(v.scores[32063], -10000.0f);
  // Learned pieces other than whitespace runs are ordered by id.
  for (int id = 261; id < 29871; ++id) {
    if (v.scores[id] != -1e9f) {
      EXPECT_EQ(v.scores[id], -static_cast<float>(id - 259)) << id;
    }
  }
}

TEST(VocabDataTest, UserDefinedKindOnlyChangesAddedTokens) {
  const VocabData c = Phi3Vocab(AddedTokenKind::kControl);
  const VocabData u = Phi3Vocab(AddedTokenKind::kUserDefined);
  for (int id = 0; id < kPhi3VocabRows; ++id) {
    const bool added = id >= 32000 && id <= 32010;
    EXPECT_EQ(u.token_types[id], added ? kTokenTypeUserDefined : c.token_types[id]) << id;
  }
  EXPECT_EQ(u.tokens, c.tokens);
  EXPECT_EQ(u.scores, c.scores);
}

TEST(VocabDataTest, GgufRoundTrip) {
  const VocabData v = Phi3Vocab();
  GgufWriter writer;
  ASSERT_TRUE(writer.AddString("general.architecture", "phi3").ok());
  ASSERT_TRUE(AddVocabToGguf(v, writer).ok());
  auto bytes = writer.WriteToString();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto file = GgufFile::OpenBuffer(*bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(*(*file)->GetStringArray("tokenizer.ggml.tokens"), v.tokens);
  EXPECT_EQ(*(*file)->GetFloat32Array("tokenizer.ggml.scores"), v.scores);
  EXPECT_EQ(*(*file)->GetInt32Array("tokenizer.ggml.token_type"), v.token_types);
  EXPECT_EQ(*(*file)->GetString("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(*(*file)->GetUint32("tokenizer.ggml.eos_token_id"), 32000u);
  EXPECT_EQ(*(*file)->GetBool("tokenizer.ggml.add_bos_token"), true);
  // A second call collides with the keys already written.
  EXPECT_FALSE(AddVocabToGguf(v, writer).ok());
}

}  // namespace
}  // namespace phi3
