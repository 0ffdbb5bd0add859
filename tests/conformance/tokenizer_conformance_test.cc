// Tokenizer conformance against llama.cpp (node-llama-cpp's prebuilt library).
//
// At test time: tests/oracle/tokenize_corpus.mjs generates the corpus (>2,000
// strings) and token sequences; for each vocabulary variant this test writes a
// vocab-only Phi-3 GGUF with the real vocabulary, tests/oracle/tokenize_oracle.mjs
// tokenizes/detokenizes everything with llama.cpp, and our Tokenizer (built from
// the same file) must give identical ids in both parse modes, identical
// detokenized text, identical token attributes and end-of-generation ids.
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/tokenizer/detokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab_data.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

namespace fs = std::filesystem;

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::vector<int32_t> ParseIds(std::string_view s) {
  std::vector<int32_t> ids;
  for (absl::string_view f : absl::StrSplit(absl::string_view(s.data(), s.size()), ' ',
                                            absl::SkipEmpty())) {
    int32_t v = 0;
    if (absl::SimpleAtoi(f, &v)) ids.push_back(v);
  }
  return ids;
}

std::vector<std::string> ReadLines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

int RunCommand(const std::string& command) {
  const int rc = std::system(command.c_str());
  return rc;
}

struct Variant {
  const char* label;
  AddedTokenKind kind;
  const char* general_name;
  bool from_mkmodel = false;  // a tiny model written by phi3-mkmodel instead
};

class TokenizerConformanceTest : public ::testing::TestWithParam<Variant> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        absl::StrCat("phi3_tok_conf_", static_cast<long>(getpid())));
    fs::create_directories(*dir_);
    const std::string cmd = absl::StrCat(PHI3_NODE, " ", PHI3_ORACLE_DIR, "/tokenize_corpus.mjs ",
                                         (*dir_ / "corpus.txt").string(), " ",
                                         (*dir_ / "seqs.txt").string());
    ASSERT_EQ(RunCommand(cmd), 0) << cmd;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    // PHI3_KEEP_TEST_FILES=1 keeps the corpus, models and oracle output.
    if (std::getenv("PHI3_KEEP_TEST_FILES") == nullptr) fs::remove_all(*dir_, ec);
    delete dir_;
  }
  static fs::path* dir_;
};
fs::path* TokenizerConformanceTest::dir_ = nullptr;

// A vocab-only GGUF: the hparams llama.cpp reads for phi3 plus the vocabulary.
std::string WriteVocabGguf(const fs::path& path, const Variant& v) {
  GgufWriter w;
  const VocabData vocab = Phi3Vocab(v.kind);
  absl::Status s = w.AddString("general.architecture", "phi3");
  if (s.ok()) s = w.AddString("general.name", v.general_name);
  if (s.ok()) s = w.AddUint32("phi3.context_length", 4096);
  if (s.ok()) s = w.AddUint32("phi3.embedding_length", 64);
  if (s.ok()) s = w.AddUint32("phi3.feed_forward_length", 128);
  if (s.ok()) s = w.AddUint32("phi3.block_count", 1);
  if (s.ok()) s = w.AddUint32("phi3.attention.head_count", 4);
  if (s.ok()) s = w.AddUint32("phi3.attention.head_count_kv", 4);
  if (s.ok()) s = w.AddUint32("phi3.rope.dimension_count", 16);
  if (s.ok()) s = w.AddFloat32("phi3.attention.layer_norm_rms_epsilon", 1e-5f);
  if (s.ok()) s = AddVocabToGguf(vocab, w);
  if (s.ok()) s = w.WriteToFile(path.string());
  return s.ok() ? "" : std::string(s.message());
}

TEST_P(TokenizerConformanceTest, MatchesLlamaCpp) {
  const Variant& v = GetParam();
  const fs::path model = *dir_ / absl::StrCat(v.label, ".gguf");
  const fs::path out = *dir_ / absl::StrCat(v.label, ".oracle.txt");
  if (v.from_mkmodel) {
#ifdef PHI3_MKMODEL
    const std::string mk = absl::StrCat(PHI3_MKMODEL, " --preset tiny --type q8_0 --seed 3 --out ",
                                        model.string(), " --added-token-type ",
                                        v.kind == AddedTokenKind::kControl ? "control" : "user_defined");
    ASSERT_EQ(RunCommand(mk), 0) << mk;
#else
    GTEST_SKIP() << "phi3-mkmodel is not part of this build";
#endif
  } else {
    ASSERT_EQ(WriteVocabGguf(model, v), "");
  }
  auto file = GgufFile::Open(model.string());
  ASSERT_TRUE(file.ok()) << file.status();
  auto tok = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.status();

  const std::string cmd = absl::StrCat(PHI3_NODE, " ", PHI3_ORACLE_DIR, "/tokenize_oracle.mjs ",
                                       model.string(), " ", (*dir_ / "corpus.txt").string(), " ",
                                       (*dir_ / "seqs.txt").string(), " ", out.string(), " ",
                                       tok->vocab_size());
  ASSERT_EQ(RunCommand(cmd), 0) << cmd;

  const std::vector<std::string> corpus = ReadLines(*dir_ / "corpus.txt");
  const std::vector<std::string> seqs = ReadLines(*dir_ / "seqs.txt");
  const std::vector<std::string> oracle = ReadLines(out);
  ASSERT_EQ(oracle.size(), corpus.size() + seqs.size() + 2);

  int id_mismatches = 0, text_mismatches = 0, stream_mismatches = 0, seq_mismatches = 0;
  auto report = [](int& count, const std::string& what) {
    if (++count <= 8) ADD_FAILURE() << what;
  };
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::string text = Unhex(corpus[i]);
    std::vector<std::string> f = absl::StrSplit(oracle[i], '\t');
    ASSERT_EQ(f.size(), 5u) << oracle[i];
    for (int special = 0; special < 2; ++special) {
      const std::vector<int32_t> want = ParseIds(f[1 + special]);
      const std::vector<int32_t> got = tok->Encode(text, /*add_special=*/false, special != 0);
      if (got != want) {
        report(id_mismatches, absl::StrCat("ids differ (parse_special=", special, ") for hex ",
                                           corpus[i], "\n  llama.cpp: ", absl::StrJoin(want, " "),
                                           "\n  ours:      ", absl::StrJoin(got, " ")));
      }
      const std::string decoded = ReplaceInvalidUtf8(tok->Decode(want, false, special != 0));
      if (Hex(decoded) != f[3 + special]) {
        report(text_mismatches, absl::StrCat("detokenized text differs (special=", special,
                                             ") for ids ", absl::StrJoin(want, " ")));
      }
      // Streaming: the deltas concatenate to the same text.
      StreamingDetokenizer stream(*tok, {.unparse_special = special != 0,
                                         .replace_invalid_utf8 = true});
      std::string streamed;
      for (int32_t id : want) streamed += stream.Push(id);
      streamed += stream.Finish();
      if (Hex(streamed) != f[3 + special]) {
        report(stream_mismatches, absl::StrCat("streamed text differs for ids ",
                                               absl::StrJoin(want, " ")));
      }
    }
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    const std::vector<int32_t> ids = ParseIds(seqs[i]);
    std::vector<std::string> f = absl::StrSplit(oracle[corpus.size() + i], '\t');
    ASSERT_EQ(f.size(), 3u);
    for (int special = 0; special < 2; ++special) {
      if (Hex(ReplaceInvalidUtf8(tok->Decode(ids, false, special != 0))) != f[1 + special]) {
        report(seq_mismatches, absl::StrCat("detokenize differs (special=", special, ") for ",
                                            seqs[i]));
      }
    }
  }

  // End-of-generation ids and token attributes.
  std::vector<std::string> eog = absl::StrSplit(oracle[oracle.size() - 2], '\t');
  ASSERT_EQ(eog[0], "EOG");
  EXPECT_EQ(tok->end_of_generation_ids(), ParseIds(eog.size() > 1 ? eog[1] : ""));
  std::vector<std::string> attr = absl::StrSplit(oracle.back(), '\t');
  ASSERT_EQ(attr[0], "ATTR");
  const std::vector<int32_t> want_attrs = ParseIds(attr[1]);
  ASSERT_EQ(want_attrs.size(), static_cast<size_t>(tok->vocab_size()));
  int attr_mismatches = 0;
  for (int32_t id = 0; id < tok->vocab_size(); ++id) {
    if (tok->attr(id) != static_cast<uint32_t>(want_attrs[id])) {
      report(attr_mismatches, absl::StrCat("attr of ", id, " (", tok->token_text(id), "): ours ",
                                           tok->attr(id), ", llama.cpp ", want_attrs[id]));
    }
  }

  std::printf("[%s] %zu strings x 2 modes: %d id mismatches, %d detokenize mismatches, "
              "%d streaming mismatches; %zu id sequences: %d detokenize mismatches; "
              "%d attribute mismatches\n",
              v.label, corpus.size(), id_mismatches, text_mismatches, stream_mismatches,
              seqs.size(), seq_mismatches, attr_mismatches);
  EXPECT_GE(corpus.size(), 2000u);
  EXPECT_EQ(id_mismatches + text_mismatches + stream_mismatches + seq_mismatches + attr_mismatches,
            0);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, TokenizerConformanceTest,
    ::testing::Values(Variant{"control", AddedTokenKind::kControl, "Phi3 Mini Conformance"},
                      Variant{"user_defined", AddedTokenKind::kUserDefined, "phi-3-mini-4k"},
                      Variant{"no_rstrip", AddedTokenKind::kControl, "llama vocab test"},
                      Variant{"mkmodel_tiny", AddedTokenKind::kControl, "", true},
                      Variant{"mkmodel_tiny_user_defined", AddedTokenKind::kUserDefined, "", true}),
    [](const ::testing::TestParamInfo<Variant>& info) { return std::string(info.param.label); });

}  // namespace
}  // namespace phi3
