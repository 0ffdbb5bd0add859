#include "engine/tokenizer/tokenizer.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "engine/gguf/gguf_file.h"

namespace phi3 {

struct Tokenizer::Index {
  // Token text -> id; for duplicate texts the last id wins, as in llama.cpp.
  absl::flat_hash_map<std::string, int32_t> ids;
};

namespace {

constexpr absl::string_view kSpaceEscape = "\xE2\x96\x81";  // U+2581

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// C-locale isspace, which llama.cpp uses to apply LSTRIP/RSTRIP.
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Byte length of a UTF-8 sequence from its first byte, as llama.cpp's
// unicode_len_utf8 (continuation and invalid lead bytes count as 1).
size_t Utf8Len(char c) {
  static constexpr size_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[static_cast<uint8_t>(c) >> 4];
}

uint32_t AttrFromType(int32_t type) {
  switch (type) {
    case kTokenTypeUnknown: return kAttrUnknown;
    case kTokenTypeUnused: return kAttrUnused;
    case kTokenTypeNormal: return kAttrNormal;
    case kTokenTypeControl: return kAttrControl;
    case kTokenTypeUserDefined: return kAttrUserDefined;
    case kTokenTypeByte: return kAttrByte;
    default: return kAttrUndefined;
  }
}

// Token texts llama.cpp (llama-vocab.cpp, load) treats as end of generation,
// and the subset it searches for its end-of-turn token.
constexpr const char* kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
    "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>",
    "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
    "<turn|>", "<|tool_response>", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
    "[e~[",
};
constexpr const char* kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "<end_of_utterance>",
};

// A partitioned piece of input: a token, or raw text [begin, end) of `src`.
struct Piece {
  int32_t token = -1;  // -1: raw text
  const std::string* src = nullptr;
  size_t begin = 0, end = 0;
};

// One SentencePiece symbol: a run of bytes of the escaped text, linked to its
// neighbours; n == 0 once merged into its left neighbour.
struct Symbol {
  int prev;
  int next;
  size_t begin;
  size_t n;
};

struct Bigram {
  int left;
  int right;
  float score;
  size_t size;
};

// Highest score first; on equal scores the leftmost bigram first.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

// Buffers reused across the segments of one EncodeText call.
struct Tokenizer::SpmScratch {
  std::vector<Symbol> symbols;
  std::vector<Bigram> queue;
};

Tokenizer::~Tokenizer() = default;

absl::StatusOr<Tokenizer> Tokenizer::FromVocab(const VocabData& vocab,
                                               const TokenizerOptions& options) {
  if (vocab.model != "llama") {
    return absl::UnimplementedError(absl::StrCat(
        "tokenizer.ggml.model: only \"llama\" (SentencePiece) is supported, got \"",
        vocab.model, "\""));
  }
  const size_t n = vocab.tokens.size();
  if (n == 0) return absl::InvalidArgumentError("tokenizer.ggml.tokens is empty");
  if (!vocab.scores.empty() && vocab.scores.size() < n) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.ggml.scores has ", vocab.scores.size(),
                                                   " entries, expected at least ", n));
  }
  if (!vocab.token_types.empty() && vocab.token_types.size() < n) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.ggml.token_type has ",
                                                   vocab.token_types.size(),
                                                   " entries, expected at least ", n));
  }

  Tokenizer t;
  auto index = std::make_shared<Index>();
  t.tokens_.resize(n);
  t.scores_.assign(n, 0.0f);
  t.attrs_.assign(n, kAttrNormal);
  index->ids.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    t.tokens_[i] = vocab.tokens[i].empty() ? absl::StrCat("[EMPTY_", i, "]") : vocab.tokens[i];
    index->ids[t.tokens_[i]] = static_cast<int32_t>(i);
    if (!vocab.scores.empty()) t.scores_[i] = vocab.scores[i];
    if (!vocab.token_types.empty()) t.attrs_[i] = AttrFromType(vocab.token_types[i]);
  }
  t.index_ = index;
  // See EncodeText: is U+2581 only ever at the start of tokens?
  t.split_at_spaces_ = true;
  for (const std::string& tok : t.tokens_) {
    size_t lead = 0;
    while (absl::string_view(tok).substr(lead, kSpaceEscape.size()) == kSpaceEscape) {
      lead += kSpaceEscape.size();
    }
    if (tok.find(kSpaceEscape.data(), lead, kSpaceEscape.size()) != std::string::npos) {
      t.split_at_spaces_ = false;
      break;
    }
  }
  t.add_space_prefix_ = options.add_space_prefix;
  t.add_bos_ = vocab.add_bos;
  t.add_eos_ = vocab.add_eos;

  // Special ids: llama.cpp's SPM defaults (bos 1, eos 2, unk 0), overridden by
  // the file's keys when in range.
  auto pick = [n](int32_t from_file, int32_t fallback) {
    int32_t id = fallback >= 0 && static_cast<size_t>(fallback) < n ? fallback : -1;
    if (from_file >= 0 && static_cast<size_t>(from_file) < n) id = from_file;
    return id;
  };
  t.bos_id_ = pick(vocab.bos_id, 1);
  t.eos_id_ = pick(vocab.eos_id, 2);
  t.unk_id_ = pick(vocab.unk_id, 0);
  t.pad_id_ = pick(vocab.pad_id, -1);

  // End-of-turn token (first text match; any of them is also an EOG text),
  // EOG texts get the CONTROL attribute.
  std::vector<int32_t> eog;
  for (const char* text : kEotTexts) {
    if (auto id = t.TokenId(text); id && t.eot_id_ < 0) t.eot_id_ = *id;
  }
  for (const char* text : kEogTexts) {
    if (auto id = t.TokenId(text)) {
      eog.push_back(*id);
      t.attrs_[*id] |= kAttrControl;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if ((t.attrs_[i] & kAttrControl) && absl::StrContains(t.tokens_[i], "unused")) {
      t.attrs_[i] |= kAttrUnused;
    }
  }
  if (t.eos_id_ >= 0) eog.push_back(t.eos_id_);
  if (t.eot_id_ >= 0) eog.push_back(t.eot_id_);
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  t.eog_ids_ = std::move(eog);

  for (size_t i = 0; i < n; ++i) {
    if (t.attrs_[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      t.special_ids_.push_back(static_cast<int32_t>(i));
    }
  }
  std::stable_sort(t.special_ids_.begin(), t.special_ids_.end(), [&t](int32_t a, int32_t b) {
    return t.tokens_[a].size() > t.tokens_[b].size();
  });

  // Token-to-piece cache, built (as in llama.cpp) before the per-model
  // LSTRIP/RSTRIP attributes, which do not change pieces.
  t.pieces_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t attr = t.attrs_[i];
    const std::string& text = t.tokens_[i];
    if (attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) {
      t.pieces_[i] = text;
    } else if (attr & kAttrNormal) {
      t.pieces_[i] = absl::StrReplaceAll(text, {{kSpaceEscape, " "}});
    } else if (attr & kAttrByte) {
      // "<0xNN>": strtol over the two hex digits, as llama.cpp.
      t.pieces_[i] = std::string(1, static_cast<char>(std::strtol(text.substr(3, 2).c_str(), nullptr, 16)));
    }
  }

  t.byte_ids_.assign(256, -1);
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char name[7] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>', 0};
    if (auto id = t.TokenId(name)) {
      t.byte_ids_[b] = *id;
    } else if (auto raw = t.TokenId(std::string(1, static_cast<char>(b)))) {
      t.byte_ids_[b] = *raw;
    }
  }

  const std::string name = absl::AsciiStrToLower(options.model_name);
  if (absl::StrContains(name, "phi-3") || absl::StrContains(name, "phi3")) {
    for (int32_t id : t.special_ids_) t.attrs_[id] |= kAttrRstrip;
    if (auto id = t.TokenId("</s>")) t.attrs_[*id] |= kAttrRstrip;
    for (const char* text : {"<unk>", "<s>", "<|endoftext|>"}) {
      if (auto id = t.TokenId(text)) t.attrs_[*id] &= ~kAttrRstrip;
    }
  }
  return t;
}

absl::StatusOr<Tokenizer> Tokenizer::FromGguf(const GgufFile& file) {
  VocabData vocab;
  auto model = file.GetString("tokenizer.ggml.model");
  if (!model.ok()) return model.status();
  vocab.model = *model;
  if (vocab.model != "llama") return FromVocab(vocab, {});  // Unimplemented

  auto tokens = file.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status();
  vocab.tokens = std::move(*tokens);
  if (file.Has("tokenizer.ggml.scores")) {
    auto scores = file.GetFloat32Array("tokenizer.ggml.scores");
    if (!scores.ok()) return scores.status();
    vocab.scores = std::move(*scores);
  }
  if (file.Has("tokenizer.ggml.token_type")) {
    auto types = file.GetInt32Array("tokenizer.ggml.token_type");
    if (!types.ok()) return types.status();
    vocab.token_types = std::move(*types);
  }
  struct IdKey {
    const char* key;
    int32_t* id;
  };
  vocab.bos_id = vocab.eos_id = vocab.unk_id = vocab.pad_id = -1;
  for (IdKey k : {IdKey{"tokenizer.ggml.bos_token_id", &vocab.bos_id},
                  IdKey{"tokenizer.ggml.eos_token_id", &vocab.eos_id},
                  IdKey{"tokenizer.ggml.unknown_token_id", &vocab.unk_id},
                  IdKey{"tokenizer.ggml.padding_token_id", &vocab.pad_id}}) {
    auto v = file.GetOptionalUint32(k.key);
    if (!v.ok()) return v.status();
    if (v->has_value() && **v <= static_cast<uint32_t>(INT32_MAX)) *k.id = static_cast<int32_t>(**v);
  }
  // llama.cpp's SPM defaults: add BOS, no EOS, add the space prefix.
  vocab.add_bos = true;
  vocab.add_eos = false;
  TokenizerOptions options;
  for (auto [key, flag] : {std::pair{"tokenizer.ggml.add_bos_token", &vocab.add_bos},
                           std::pair{"tokenizer.ggml.add_eos_token", &vocab.add_eos},
                           std::pair{"tokenizer.ggml.add_space_prefix", &options.add_space_prefix}}) {
    auto v = file.GetOptionalBool(key);
    if (!v.ok()) return v.status();
    if (v->has_value()) *flag = **v;
  }
  auto name = file.GetOptionalString("general.name");
  if (!name.ok()) return name.status();
  options.model_name = name->value_or("");
  return FromVocab(vocab, options);
}

Tokenizer Tokenizer::Phi3(AddedTokenKind kind) {
  TokenizerOptions options;
  options.model_name = "phi3";
  return *FromVocab(Phi3Vocab(kind), options);  // the embedded vocabulary is valid
}

std::optional<int32_t> Tokenizer::TokenId(std::string_view text) const {
  auto it = index_->ids.find(AbslView(text));
  if (it == index_->ids.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::IsEndOfGeneration(int32_t id) const {
  return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  const EncodeFragment fragment = TextFragment{std::string(text), parse_special};
  return EncodeFragments(std::span<const EncodeFragment>(&fragment, 1), add_special);
}

// Splits `text` at every occurrence of each special token (longest first), as
// llama.cpp's tokenizer_st_partition, appending tokens and raw text pieces.
void Tokenizer::PartitionSpecial(std::string_view text, bool parse_special,
                                 std::vector<EncodeFragment>& out) const {
  struct Span {
    int32_t token;  // -1: raw text [begin, end)
    size_t begin, end;
  };
  std::vector<Span> spans;
  if (!text.empty()) spans.push_back({-1, 0, text.size()});
  std::vector<Span> next;
  for (int32_t special : special_ids_) {
    const uint32_t attr = attrs_[special];
    if (!parse_special && (attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string& needle = tokens_[special];
    next.clear();
    for (const Span& s : spans) {
      if (s.token >= 0) {
        next.push_back(s);
        continue;
      }
      size_t begin = s.begin;
      const size_t end = s.end;
      while (begin < end) {
        const size_t match = text.substr(0, end).find(needle, begin);
        if (match == std::string_view::npos) break;
        size_t left_end = match;
        if (attr & kAttrLstrip) {
          while (left_end > begin && IsSpace(text[left_end - 1])) --left_end;
        }
        if (left_end > begin) next.push_back({-1, begin, left_end});
        next.push_back({special, 0, 0});
        begin = match + needle.size();
        if (attr & kAttrRstrip) {
          while (begin < end && IsSpace(text[begin])) ++begin;
        }
      }
      if (begin < end) next.push_back({-1, begin, end});
    }
    spans.swap(next);
  }
  for (const Span& s : spans) {
    if (s.token >= 0) {
      out.emplace_back(s.token);
    } else {
      out.emplace_back(TextFragment{std::string(text.substr(s.begin, s.end - s.begin)), false});
    }
  }
}

std::vector<int32_t> Tokenizer::EncodeFragments(std::span<const EncodeFragment> fragments,
                                                bool add_special) const {
  // Partition texts, merge adjacent raw texts (they are contiguous in the
  // equivalent single input), then let each token trim its neighbours.
  std::vector<EncodeFragment> parts;
  for (const EncodeFragment& f : fragments) {
    if (const auto* id = std::get_if<int32_t>(&f)) {
      parts.emplace_back(*id);
      continue;
    }
    const auto& tf = std::get<TextFragment>(f);
    std::vector<EncodeFragment> split;
    PartitionSpecial(tf.text, tf.parse_special, split);
    for (auto& p : split) {
      auto* text = std::get_if<TextFragment>(&p);
      if (text && !parts.empty()) {
        if (auto* prev = std::get_if<TextFragment>(&parts.back())) {
          prev->text += text->text;
          continue;
        }
      }
      parts.push_back(std::move(p));
    }
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    auto* text = std::get_if<TextFragment>(&parts[i]);
    if (!text) continue;
    std::string& s = text->text;
    if (i > 0 && (AttrOrZero(std::get<int32_t>(parts[i - 1])) & kAttrRstrip)) {
      size_t k = 0;
      while (k < s.size() && IsSpace(s[k])) ++k;
      s.erase(0, k);
    }
    if (i + 1 < parts.size() && (AttrOrZero(std::get<int32_t>(parts[i + 1])) & kAttrLstrip)) {
      while (!s.empty() && IsSpace(s.back())) s.pop_back();
    }
  }

  std::vector<int32_t> out;
  if (add_special && add_bos_ && bos_id_ >= 0) out.push_back(bos_id_);
  bool prev_special = true;  // the first text gets the space prefix too
  std::string escaped;
  for (const EncodeFragment& p : parts) {
    if (const auto* id = std::get_if<int32_t>(&p)) {
      out.push_back(*id);
      prev_special = true;
      continue;
    }
    const std::string& text = std::get<TextFragment>(p).text;
    if (text.empty()) continue;  // llama.cpp never creates empty fragments
    escaped.clear();
    if (add_space_prefix_ && prev_special) escaped.append(kSpaceEscape.data(), kSpaceEscape.size());
    for (char c : text) {
      if (c == ' ') {
        escaped.append(kSpaceEscape.data(), kSpaceEscape.size());
      } else {
        escaped.push_back(c);
      }
    }
    EncodeText(escaped, out);
    prev_special = false;
  }
  if (add_special && add_eos_ && eos_id_ >= 0) out.push_back(eos_id_);
  return out;
}

// llama.cpp's llm_tokenizer_spm_session::tokenize runs its merge loop over the
// whole fragment. When no token contains U+2581 after another character
// (split_at_spaces_), no merge can join a symbol that ends in a non-U+2581
// character with a following U+2581 symbol, so the fragment splits there into
// independent segments with identical results and a much smaller queue.
void Tokenizer::EncodeText(std::string_view text, std::vector<int32_t>& out) const {
  SpmScratch scratch;
  if (!split_at_spaces_) return EncodeSegment(text, scratch, out);
  const std::string_view space(kSpaceEscape.data(), kSpaceEscape.size());
  size_t segment = 0;
  bool prev_space = false;
  for (size_t offs = 0; offs < text.size();) {
    const size_t len = std::min(Utf8Len(text[offs]), text.size() - offs);
    const bool is_space = text.substr(offs, len) == space;
    if (is_space && !prev_space && offs > segment) {
      EncodeSegment(text.substr(segment, offs - segment), scratch, out);
      segment = offs;
    }
    prev_space = is_space;
    offs += len;
  }
  EncodeSegment(text.substr(segment), scratch, out);
}

void Tokenizer::EncodeSegment(std::string_view text, SpmScratch& scratch,
                              std::vector<int32_t>& out) const {
  std::vector<Symbol>& symbols = scratch.symbols;
  std::vector<Bigram>& queue = scratch.queue;  // a heap ordered by BigramOrder
  symbols.clear();
  queue.clear();
  for (size_t offs = 0; offs < text.size();) {
    const size_t len = std::min(Utf8Len(text[offs]), text.size() - offs);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, offs + len == text.size() ? -1 : index + 1, offs, len});
    offs += len;
  }

  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t size = symbols[left].n + symbols[right].n;
    auto it = index_->ids.find(AbslView(text.substr(symbols[left].begin, size)));
    if (it == index_->ids.end()) return;
    queue.push_back({left, right, scores_[it->second], size});
    std::push_heap(queue.begin(), queue.end(), BigramOrder{});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), BigramOrder{});
    const Bigram b = queue.back();
    queue.pop_back();
    Symbol& left = symbols[b.left];
    Symbol& right = symbols[b.right];
    if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue;
    left.n += right.n;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = b.left;
    try_add(left.prev, b.left);
    try_add(b.left, left.next);
  }

  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].begin, symbols[i].n);
    auto it = index_->ids.find(AbslView(piece));
    if (it != index_->ids.end()) {
      out.push_back(it->second);
    } else {
      AppendByteTokens(piece, out);
    }
  }
}

void Tokenizer::AppendByteTokens(std::string_view bytes, std::vector<int32_t>& out) const {
  for (char c : bytes) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    // llama.cpp throws here (std::out_of_range); a vocabulary without byte
    // tokens is not a SentencePiece-with-byte-fallback vocabulary. Use <unk>.
    out.push_back(id >= 0 ? id : unk_id_);
  }
}

std::string Tokenizer::TokenPiece(int32_t id, bool special) const {
  if (id < 0 || id >= vocab_size()) return "";
  if (!special && (attrs_[id] & (kAttrUnknown | kAttrControl))) return "";
  return pieces_[id];
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool remove_special,
                              bool unparse_special) const {
  bool remove_space = add_space_prefix_;
  if (remove_special && add_bos_ && !ids.empty() && ids.front() == bos_id_) {
    remove_space = false;
    ids = ids.subspan(1);
  }
  if (remove_special && add_eos_ && !ids.empty() && ids.back() == eos_id_) {
    ids = ids.subspan(0, ids.size() - 1);
  }
  std::string out;
  for (int32_t id : ids) {
    std::string piece = TokenPiece(id, unparse_special);
    if (remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    remove_space = false;
    out += piece;
  }
  return out;
}

}  // namespace phi3
