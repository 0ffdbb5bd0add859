// llama.cpp's SentencePiece-BPE tokenizer (`tokenizer.ggml.model = llama`),
// reimplemented to give the same token ids and text as llama.cpp on the same
// GGUF vocabulary:
//  - Encode = llama_tokenize(text, add_special, parse_special): special-token
//    partitioning first (longest token text first; CONTROL/UNKNOWN tokens only
//    when parse_special, USER_DEFINED tokens always; LSTRIP/RSTRIP trim the
//    whitespace next to a matched token), then each remaining text fragment gets
//    a leading space when it starts the text or follows a special token
//    (add_space_prefix), spaces become U+2581, UTF-8 characters are merged
//    bigram by bigram in score order (ties: leftmost first), and characters
//    that end up outside the vocabulary fall back to <0xNN> byte tokens.
//    BOS/EOS are added when add_special and the file's add_bos/add_eos say so.
//  - TokenPiece / Decode = llama_token_to_piece / llama_detokenize.
//  - Token attributes as llama.cpp derives them at load time: from the token
//    types, plus CONTROL for end-of-generation texts (<|end|>, <|endoftext|>,
//    </s>, ...), UNUSED for control tokens named "unused", and, when
//    general.name contains "phi3" or "phi-3" (any case), RSTRIP on every
//    special token except <unk>, <s> and <|endoftext|> (and on </s>).
// Not reproduced: llama.cpp's vocabulary-specific workarounds for gpt-oss,
// solar-open, gemma4 and FIM tokens (none of their token texts occur in a
// Phi-3 vocabulary).
//
// Thread safety: immutable after construction; all const methods may be called
// concurrently. Copyable and movable.
#ifndef PHI3_ENGINE_TOKENIZER_TOKENIZER_H_
#define PHI3_ENGINE_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/vocab_data.h"

namespace phi3 {

class GgufFile;

// llama_token_attr bit flags.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrNormalized = 1u << 6,
  kAttrLstrip = 1u << 7,
  kAttrRstrip = 1u << 8,
  kAttrSingleWord = 1u << 9,
};

// Settings llama.cpp reads from GGUF keys other than the token arrays.
struct TokenizerOptions {
  std::string model_name;       // general.name (decides the Phi-3 RSTRIP rule)
  bool add_space_prefix = true;  // tokenizer.ggml.add_space_prefix
};

// One piece of input to EncodeFragments: a token id placed as is, or text.
struct TextFragment {
  std::string text;
  bool parse_special = false;  // as Encode's parse_special, for this text only
};
using EncodeFragment = std::variant<int32_t, TextFragment>;

class Tokenizer {
 public:
  // Reads tokenizer.ggml.{model,tokens,scores,token_type,bos/eos/unknown/
  // padding_token_id,add_bos_token,add_eos_token,add_space_prefix} and
  // general.name. Errors: NotFound (no tokenizer.ggml.tokens), Unimplemented
  // (model other than "llama"), InvalidArgument (arrays of the wrong type or
  // shorter than the token list), as llama.cpp refuses such files.
  static absl::StatusOr<Tokenizer> FromGguf(const GgufFile& file);
  // From in-memory vocabulary data (e.g. Phi3Vocab()). Same checks as FromGguf.
  static absl::StatusOr<Tokenizer> FromVocab(const VocabData& vocab,
                                             const TokenizerOptions& options);
  // Phi3Vocab(kind) with general.name "phi3".
  static Tokenizer Phi3(AddedTokenKind kind = AddedTokenKind::kControl);

  // llama_tokenize(text, add_special, parse_special). Any bytes are accepted
  // (invalid UTF-8 falls back to byte tokens).
  std::vector<int32_t> Encode(std::string_view text, bool add_special,
                              bool parse_special) const;
  // Encodes a sequence of fixed tokens and text as llama.cpp would encode the
  // concatenation, if each fixed token had been found in the text as a special
  // token: the RSTRIP/LSTRIP of a fixed token trims the adjacent text, text that
  // starts the input or follows a token gets the leading space. Text is
  // partitioned with its own parse_special. add_special as in Encode.
  // REQUIRES: fixed token ids are in [0, vocab_size()).
  std::vector<int32_t> EncodeFragments(std::span<const EncodeFragment> fragments,
                                       bool add_special) const;

  // llama_token_to_piece(id, lstrip = 0, special): the bytes of one token.
  // CONTROL/UNKNOWN tokens give "" unless `special`; USER_DEFINED tokens give
  // their text; NORMAL tokens their text with U+2581 -> ' '; BYTE tokens one
  // byte; UNUSED tokens "". Out-of-range ids give "".
  std::string TokenPiece(int32_t id, bool special = false) const;
  // llama_detokenize(ids, remove_special, unparse_special): concatenated pieces;
  // one leading space of the first piece is removed (add_space_prefix) unless
  // remove_special drops a leading BOS (then the space is kept); remove_special
  // also drops a trailing EOS when add_eos. Output is raw bytes (may be invalid
  // UTF-8, e.g. for an incomplete byte-token sequence).
  std::string Decode(std::span<const int32_t> ids, bool remove_special = false,
                     bool unparse_special = false) const;

  // llama_vocab_is_eog: eos, the detected end-of-turn token, and the tokens whose
  // text llama.cpp treats as end of generation (for Phi-3: </s>, <|endoftext|>,
  // <|end|>).
  bool IsEndOfGeneration(int32_t id) const;
  const std::vector<int32_t>& end_of_generation_ids() const { return eog_ids_; }

  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  // An end-of-turn token found by text (llama.cpp picks one of <|end|> and
  // <|endoftext|> in hash order; both are end of generation). -1 if none.
  int32_t eot_id() const { return eot_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t pad_id() const { return pad_id_; }  // -1 if none
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  // REQUIRES: 0 <= id < vocab_size().
  uint32_t attr(int32_t id) const { return attrs_[id]; }
  float score(int32_t id) const { return scores_[id]; }
  const std::string& token_text(int32_t id) const { return tokens_[id]; }
  // Exact vocabulary lookup (any token type), or nullopt.
  std::optional<int32_t> TokenId(std::string_view text) const;

  Tokenizer(const Tokenizer&) = default;
  Tokenizer& operator=(const Tokenizer&) = default;
  Tokenizer(Tokenizer&&) = default;
  Tokenizer& operator=(Tokenizer&&) = default;
  ~Tokenizer();

 private:
  struct Index;  // piece -> id hash map (shared, immutable)
  Tokenizer() = default;

  uint32_t AttrOrZero(int32_t id) const {
    return id >= 0 && id < vocab_size() ? attrs_[id] : 0;
  }
  void PartitionSpecial(std::string_view text, bool parse_special,
                        std::vector<EncodeFragment>& out) const;
  void EncodeText(std::string_view text, std::vector<int32_t>& out) const;
  struct SpmScratch;
  void EncodeSegment(std::string_view text, SpmScratch& scratch, std::vector<int32_t>& out) const;
  void AppendByteTokens(std::string_view bytes, std::vector<int32_t>& out) const;

  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<uint32_t> attrs_;
  std::vector<std::string> pieces_;     // llama.cpp's token-to-piece cache (special = true)
  std::vector<int32_t> special_ids_;    // CONTROL|USER_DEFINED|UNKNOWN, longest text first
  std::vector<int32_t> eog_ids_;        // sorted
  std::vector<int32_t> byte_ids_;       // [256] token of each byte, -1 if none
  std::shared_ptr<const Index> index_;
  int32_t bos_id_ = -1, eos_id_ = -1, eot_id_ = -1, unk_id_ = -1, pad_id_ = -1;
  bool add_bos_ = true, add_eos_ = false, add_space_prefix_ = true;
  bool split_at_spaces_ = false;  // see EncodeText
};

}  // namespace phi3

#endif  // PHI3_ENGINE_TOKENIZER_TOKENIZER_H_
