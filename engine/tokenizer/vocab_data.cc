#include "engine/tokenizer/vocab_data.h"

#include <cstdio>
#include <cstdlib>
#include "absl/strings/string_view.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/gguf/gguf_writer.h"

// The TSV (engine/tokenizer/data/llama2_vocab.tsv) is assembled into .rodata;
// PHI3_LLAMA2_VOCAB_PATH is its absolute path (set by CMake, which also makes
// this object depend on the file).
__asm__(
    ".pushsection .rodata\n"
    ".global phi3_llama2_vocab_begin\n"
    ".hidden phi3_llama2_vocab_begin\n"
    ".global phi3_llama2_vocab_end\n"
    ".hidden phi3_llama2_vocab_end\n"
    "phi3_llama2_vocab_begin:\n"
    ".incbin \"" PHI3_LLAMA2_VOCAB_PATH "\"\n"
    "phi3_llama2_vocab_end:\n"
    ".byte 0\n"
    ".popsection\n");
extern "C" const char phi3_llama2_vocab_begin[];
extern "C" const char phi3_llama2_vocab_end[];

namespace phi3 {
namespace {

struct BaseVocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
};

std::string Unescape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out.push_back(s[i]);
      continue;
    }
    switch (s[++i]) {
      case 't': out.push_back('\t'); break;
      case 'r': out.push_back('\r'); break;
      case 'n': out.push_back('\n'); break;
      default: out.push_back(s[i]); break;  // "\\"
    }
  }
  return out;
}

// The embedded data is part of the binary, so a malformed row is a build
// defect, not an input error: abort with the row number.
void CheckRow(bool ok, size_t row) {
  if (ok) return;
  std::fprintf(stderr, "phi3: embedded vocabulary is corrupt at row %zu\n", row);
  std::abort();
}

BaseVocab ParseBase() {
  BaseVocab v;
  v.tokens.reserve(kLlama2VocabSize);
  absl::string_view data(phi3_llama2_vocab_begin,
                        static_cast<size_t>(phi3_llama2_vocab_end - phi3_llama2_vocab_begin));
  for (absl::string_view line : absl::StrSplit(data, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits('\t', 2));
    const size_t row = v.tokens.size();
    CheckRow(f.size() == 3, row);
    int32_t type = 0;
    double score = 0;
    CheckRow(absl::SimpleAtoi(f[0], &type) && absl::SimpleAtod(f[1], &score), row);
    v.types.push_back(type);
    v.scores.push_back(static_cast<float>(score));
    v.tokens.push_back(Unescape(f[2]));
  }
  CheckRow(v.tokens.size() == static_cast<size_t>(kLlama2VocabSize), v.tokens.size());
  return v;
}

const BaseVocab& Base() {
  static const BaseVocab* base = new BaseVocab(ParseBase());
  return *base;
}

}  // namespace

VocabData Phi3Vocab(AddedTokenKind kind) {
  const BaseVocab& base = Base();
  VocabData v;
  v.tokens = base.tokens;
  v.scores = base.scores;
  v.token_types = base.types;
  static constexpr const char* kAdded[] = {
      "<|endoftext|>",     "<|assistant|>",     "<|placeholder1|>", "<|placeholder2|>",
      "<|placeholder3|>",  "<|placeholder4|>",  "<|system|>",       "<|end|>",
      "<|placeholder5|>",  "<|placeholder6|>",  "<|user|>",
  };
  const int32_t added_type =
      kind == AddedTokenKind::kControl ? kTokenTypeControl : kTokenTypeUserDefined;
  for (const char* text : kAdded) {
    v.tokens.emplace_back(text);
    v.scores.push_back(-1000.0f);
    v.token_types.push_back(added_type);
  }
  for (int32_t id = static_cast<int32_t>(v.tokens.size()); id < kPhi3VocabRows; ++id) {
    v.tokens.push_back(absl::StrCat("[PAD", id, "]"));
    v.scores.push_back(-10000.0f);
    v.token_types.push_back(kTokenTypeUnused);
  }
  return v;
}

absl::Status AddVocabToGguf(const VocabData& vocab, GgufWriter& writer) {
  absl::Status s = writer.AddString("tokenizer.ggml.model", vocab.model);
  if (s.ok()) s = writer.AddString("tokenizer.ggml.pre", vocab.pre);
  if (s.ok()) s = writer.AddStringArray("tokenizer.ggml.tokens", vocab.tokens);
  if (s.ok()) s = writer.AddFloat32Array("tokenizer.ggml.scores", vocab.scores);
  if (s.ok()) s = writer.AddInt32Array("tokenizer.ggml.token_type", vocab.token_types);
  if (s.ok()) s = writer.AddUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(vocab.bos_id));
  if (s.ok()) s = writer.AddUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(vocab.eos_id));
  if (s.ok()) s = writer.AddUint32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(vocab.unk_id));
  if (s.ok()) s = writer.AddUint32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(vocab.pad_id));
  if (s.ok()) s = writer.AddBool("tokenizer.ggml.add_bos_token", vocab.add_bos);
  if (s.ok()) s = writer.AddBool("tokenizer.ggml.add_eos_token", vocab.add_eos);
  return s;
}

}  // namespace phi3
