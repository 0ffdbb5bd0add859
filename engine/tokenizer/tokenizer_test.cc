#include "engine/tokenizer/tokenizer.h"

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::Not;
using ::testing::Contains;

struct JsCase {
  std::string input;
  std::vector<int32_t> ids;
};

// Cases from llama-tokenizer-js (ids from Meta's tokenizer), extracted by
// tests/oracle/tokenize_js_cases.mjs.
std::vector<JsCase> LoadJsCases() {
  std::ifstream in(PHI3_TOKENIZER_TESTDATA "/llama_tokenizer_js_cases.tsv");
  std::vector<JsCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, '\t');
    if (f.size() != 2) continue;
    JsCase c;
    for (size_t i = 0; i + 1 < f[0].size(); i += 2) {
      c.input.push_back(static_cast<char>(std::stoi(f[0].substr(i, 2), nullptr, 16)));
    }
    for (absl::string_view id : absl::StrSplit(f[1], ' ')) {
      int32_t v = 0;
      if (absl::SimpleAtoi(id, &v)) c.ids.push_back(v);
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

const Tokenizer& Phi3() {
  static const Tokenizer* t = new Tokenizer(Tokenizer::Phi3(AddedTokenKind::kControl));
  return *t;
}
const Tokenizer& Phi3UserDefined() {
  static const Tokenizer* t = new Tokenizer(Tokenizer::Phi3(AddedTokenKind::kUserDefined));
  return *t;
}

std::vector<int32_t> Ids(const Tokenizer& t, std::string_view text) {
  return t.Encode(text, /*add_special=*/false, /*parse_special=*/false);
}

TEST(TokenizerTest, ReproducesTheRealLlama2Tokenizer) {
  const std::vector<JsCase> cases = LoadJsCases();
  ASSERT_GE(cases.size(), 12u);
  for (const JsCase& c : cases) {
    EXPECT_EQ(Phi3().Encode(c.input, /*add_special=*/true, /*parse_special=*/false), c.ids)
        << c.input;
    // Decoding without BOS gives the input back (the leading space is removed).
    std::vector<int32_t> body(c.ids.begin() + 1, c.ids.end());
    EXPECT_EQ(Phi3().Decode(body), c.input);
  }
}

TEST(TokenizerTest, BosSpacePrefixAndEmptyText) {
  EXPECT_THAT(Phi3().Encode("", true, false), ElementsAre(1));
  EXPECT_THAT(Phi3().Encode("", false, false), ElementsAre());
  EXPECT_THAT(Phi3().Encode("Hello", true, false), ElementsAre(1, 15043));
  EXPECT_THAT(Ids(Phi3(), "Hello"), ElementsAre(15043));  // "▁Hello"
  EXPECT_EQ(Phi3().bos_id(), 1);
  EXPECT_EQ(Phi3().eos_id(), 32000);
  EXPECT_EQ(Phi3().vocab_size(), 32064);
}

TEST(TokenizerTest, SpecialTokensParsedOnlyWhenAsked) {
  const Tokenizer& t = Phi3();
  // RSTRIP (general.name "phi3") drops the newline after <|user|> and <|end|>;
  // the text after a special token gets the leading space.
  EXPECT_THAT(t.Encode("<|user|>\nHello<|end|>\n<|assistant|>", false, true),
              ElementsAre(32010, 15043, 32007, 32001));
  EXPECT_THAT(t.Encode("<s>Hello</s>", false, true), ElementsAre(1, 15043, 2));
  // Without special parsing the same strings are plain text.
  const std::vector<int32_t> plain = t.Encode("<|user|>\nHello<|end|>", false, false);
  EXPECT_THAT(plain, Not(Contains(32010)));
  EXPECT_THAT(plain, Not(Contains(32007)));
  EXPECT_THAT(t.Encode("<s>", false, false), Not(Contains(1)));
  EXPECT_EQ(t.Decode(plain), "<|user|>\nHello<|end|>");
  // <unk> is matched only with special parsing too.
  EXPECT_THAT(t.Encode("<unk>", false, true), ElementsAre(0));
  EXPECT_THAT(t.Encode("<unk>", false, false), Not(Contains(0)));
}

TEST(TokenizerTest, RstripOnlyForPhi3Names) {
  TokenizerOptions other;
  other.model_name = "llama";
  auto t = Tokenizer::FromVocab(Phi3Vocab(), other);
  ASSERT_TRUE(t.ok()) << t.status();
  const std::vector<int32_t> ids = t->Encode("<|user|>\nHello", false, true);
  EXPECT_EQ(ids.front(), 32010);
  EXPECT_THAT(ids, Contains(13));  // <0x0A> kept
  EXPECT_THAT(Phi3().Encode("<|user|>\nHello", false, true), ElementsAre(32010, 15043));
  // <|endoftext|> and <s> never strip.
  EXPECT_THAT(Phi3().Encode("<|endoftext|>\n", false, true), ElementsAre(32000, 29871, 13));
  EXPECT_NE(Phi3().attr(32007) & kAttrRstrip, 0u);
  EXPECT_EQ(Phi3().attr(32000) & kAttrRstrip, 0u);
  EXPECT_NE(Phi3().attr(2) & kAttrRstrip, 0u);
}

TEST(TokenizerTest, UserDefinedAddedTokensMatchWithoutSpecialParsing) {
  const Tokenizer& t = Phi3UserDefined();
  // USER_DEFINED tokens are matched in plain text...
  EXPECT_THAT(t.Encode("<|user|>\nHi", false, false), ElementsAre(32010, 6324));
  // ...except those llama.cpp turns CONTROL because their text means end of
  // generation.
  EXPECT_THAT(t.Encode("<|end|>", false, false), Not(Contains(32007)));
  EXPECT_THAT(t.Encode("<|end|>", false, true), ElementsAre(32007));
  EXPECT_NE(t.attr(32007) & kAttrControl, 0u);
  EXPECT_NE(t.attr(32007) & kAttrUserDefined, 0u);
  // User-defined tokens always render; control tokens only when asked.
  EXPECT_EQ(t.TokenPiece(32010, false), "<|user|>");
  EXPECT_EQ(Phi3().TokenPiece(32010, false), "");
  EXPECT_EQ(Phi3().TokenPiece(32010, true), "<|user|>");
}

TEST(TokenizerTest, EndOfGeneration) {
  for (const Tokenizer* t : {&Phi3(), &Phi3UserDefined()}) {
    EXPECT_TRUE(t->IsEndOfGeneration(2));
    EXPECT_TRUE(t->IsEndOfGeneration(32000));
    EXPECT_TRUE(t->IsEndOfGeneration(32007));
    EXPECT_FALSE(t->IsEndOfGeneration(1));
    EXPECT_FALSE(t->IsEndOfGeneration(32001));
    EXPECT_FALSE(t->IsEndOfGeneration(15043));
    EXPECT_THAT(t->end_of_generation_ids(), ElementsAre(2, 32000, 32007));
  }
}

TEST(TokenizerTest, ByteFallbackAndInvalidUtf8) {
  const Tokenizer& t = Phi3();
  // 🦙 is not in the vocabulary: four byte tokens (<0xF0> = id 243, ...).
  EXPECT_THAT(Ids(t, "\xF0\x9F\xA6\x99"), ElementsAre(29871, 243, 162, 169, 156));
  // Invalid UTF-8: a lone continuation byte and a truncated sequence.
  const std::string bad = "a\x80z\xE4\xB8";
  const std::vector<int32_t> ids = Ids(t, bad);
  EXPECT_EQ(t.Decode(ids), bad);
  EXPECT_THAT(ids, Contains(0x80 + 3));
}

TEST(TokenizerTest, TokenPieceAndDecodeFollowLlamaCpp) {
  const Tokenizer& t = Phi3();
  EXPECT_EQ(t.TokenPiece(15043), " Hello");
  EXPECT_EQ(t.TokenPiece(13), "\n");
  EXPECT_EQ(t.TokenPiece(1), "");
  EXPECT_EQ(t.TokenPiece(1, true), "<s>");
  EXPECT_EQ(t.TokenPiece(32011, true), "");  // pad rows are UNUSED
  const std::vector<int32_t> ids = {1, 15043, 3186};  // <s> Hello world
  EXPECT_EQ(t.Decode(ids), " Hello world");  // the BOS took the space removal
  EXPECT_EQ(t.Decode(ids, /*remove_special=*/true), " Hello world");
  EXPECT_EQ(t.Decode(ids, false, /*unparse_special=*/true), "<s> Hello world");
  const std::vector<int32_t> body = {15043, 3186};
  EXPECT_EQ(t.Decode(body), "Hello world");
}

TEST(TokenizerTest, FromGgufMatchesFromVocab) {
  GgufWriter writer;
  ASSERT_TRUE(writer.AddString("general.architecture", "phi3").ok());
  ASSERT_TRUE(writer.AddString("general.name", "Phi-3 mini").ok());
  ASSERT_TRUE(AddVocabToGguf(Phi3Vocab(AddedTokenKind::kUserDefined), writer).ok());
  auto bytes = writer.WriteToString();
  ASSERT_TRUE(bytes.ok());
  auto file = GgufFile::OpenBuffer(*bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  auto t = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(t.ok()) << t.status();
  const std::string text = "<|system|>\n  You are\thelpful.<|end|>\n<|user|> x";
  for (bool special : {false, true}) {
    EXPECT_EQ(t->Encode(text, true, special), Phi3UserDefined().Encode(text, true, special));
  }
  EXPECT_EQ(t->eos_id(), 32000);
}

TEST(TokenizerTest, FromGgufRejectsOtherModelsAndShortArrays) {
  GgufWriter writer;
  ASSERT_TRUE(writer.AddString("tokenizer.ggml.model", "gpt2").ok());
  ASSERT_TRUE(writer.AddStringArray("tokenizer.ggml.tokens", {"a", "b"}).ok());
  auto file = GgufFile::OpenBuffer(*writer.WriteToString());
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(Tokenizer::FromGguf(**file).status().code(), absl::StatusCode::kUnimplemented);

  VocabData v;
  v.tokens = {"a", "b", "c"};
  v.scores = {0.0f};
  EXPECT_EQ(Tokenizer::FromVocab(v, {}).status().code(), absl::StatusCode::kInvalidArgument);

  GgufWriter missing;
  ASSERT_TRUE(missing.AddString("general.architecture", "phi3").ok());
  auto file2 = GgufFile::OpenBuffer(*missing.WriteToString());
  ASSERT_TRUE(file2.ok());
  EXPECT_EQ(Tokenizer::FromGguf(**file2).status().code(), absl::StatusCode::kNotFound);
}

TEST(TokenizerTest, EncodeFragmentsEqualsEncodeOfTheConcatenation) {
  const Tokenizer& t = Phi3();
  const std::vector<EncodeFragment> fragments = {
      32006, TextFragment{"\n  be brief", false}, 32007, TextFragment{"\n", false},
      32010, TextFragment{"\nhi ", false}, TextFragment{"there", false}, 32007,
  };
  EXPECT_EQ(t.EncodeFragments(fragments, true),
            t.Encode("<|system|>\n  be brief<|end|>\n<|user|>\nhi there<|end|>", true, true));
}

// Without special parsing (and no USER_DEFINED tokens), any bytes survive
// Encode -> Decode, up to U+2581 vs space: spaces become U+2581 before the text
// is cut into UTF-8 symbols, and an invalid lead byte (e.g. 0xF8 claims 4
// bytes, as in llama.cpp) can swallow part of one, which then decodes as the
// raw U+2581 bytes instead of a space.
TEST(TokenizerTest, RandomBytesRoundTrip) {
  std::mt19937 rng(11);
  const std::vector<std::string> pieces = {" ", "  ", "\t", "\n", "a", "the", "\xE9\x95\x87",
                                           "\xF0\x9F\xA6\x99", "\xE2\x96\x81", "<|end|>", "<s>"};
  auto spaces = [](const std::string& s) { return absl::StrReplaceAll(s, {{"\xE2\x96\x81", " "}}); };
  for (int iter = 0; iter < 4000; ++iter) {
    // Odd iterations: any byte; even: only bytes that are complete symbols on
    // their own (ASCII and continuation bytes), where the round trip is exact.
    const bool any_byte = iter % 2 == 1;
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) {
      if (rng() % 2) {
        text += static_cast<char>(rng() % (any_byte ? 256 : 0xC0));
      } else {
        text += pieces[rng() % pieces.size()];
      }
    }
    const std::vector<int32_t> ids = Phi3().Encode(text, false, false);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < 32000) << id;
    const std::string decoded = Phi3().Decode(ids);
    if (any_byte) {
      ASSERT_EQ(spaces(decoded), spaces(text)) << "iteration " << iter;
    } else {
      ASSERT_EQ(decoded, spaces(text)) << "iteration " << iter;
    }
  }
  // The swallowing case itself.
  EXPECT_EQ(Phi3().Decode(Phi3().Encode("\xF8\x85G z", false, false)), "\xF8\x85G\xE2\x96\x81z");
}

// A vocabulary with a token that has U+2581 after another character disables
// the split-at-spaces shortcut (EncodeText); both paths must agree wherever
// that token cannot apply.
TEST(TokenizerTest, WholeFragmentPathAgreesWithSegmentedPath) {
  VocabData v = Phi3Vocab();
  v.tokens[32063] = "x\xE2\x96\x81y";  // "x▁y"
  v.token_types[32063] = kTokenTypeNormal;
  v.scores[32063] = 0.0f;
  TokenizerOptions options;
  options.model_name = "phi3";
  auto whole = Tokenizer::FromVocab(v, options);
  ASSERT_TRUE(whole.ok());
  const std::vector<std::string> texts = {
      "The llama (/\xCB\x88l\xC9\x91\xCB\x90m\xC9\x99/; \xF0\x9F\xA6\x99Spanish) is   a domesticated camelid.",
      "  def f(x):\n\treturn x  \n\n", "a b  c   d\t e", "\xE9\x95\x87 \xE4\xB8\xAD\xE6\x96\x87 ok",
      "<|user|>\n hi <|end|>", "\xF0 \x80 \xE2\x96 \xE2\x96\x81\xE2\x96\x81 z"};
  for (const std::string& text : texts) {
    for (bool special : {false, true}) {
      EXPECT_EQ(whole->Encode(text, true, special), Phi3().Encode(text, true, special)) << text;
    }
  }
  EXPECT_THAT(Ids(*whole, "x y"), Contains(32063));
}

}  // namespace
}  // namespace phi3
