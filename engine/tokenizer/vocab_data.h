// The real Phi-3 vocabulary, embedded in the binary (no data path at run time).
//
// Rows (32,064 = Phi-3-mini's embedding rows), as llama.cpp's converter
// (conversion/phi.py Phi3MiniModel.set_vocab) writes them for Phi-3:
//   0..31999     Llama-2's SentencePiece pieces with the tokenizer.model scores and
//                types: <unk> UNKNOWN, <s> </s> CONTROL, <0x00>..<0xFF> BYTE (all
//                score 0); learned pieces NORMAL with score -(id - 259), except the
//                whitespace runs "▁▁".."▁"x16 at -1e9; single characters
//                (29871..31999) continue the -(id - 259) sequence.
//   32000..32010 Phi-3's added tokens (<|endoftext|>, <|assistant|>,
//                <|placeholder1..4|>, <|system|>, <|end|>, <|placeholder5..6|>,
//                <|user|>), score -1000, type CONTROL or USER_DEFINED (kind).
//   32011..32063 "[PAD<id>]", score -10000, type UNUSED.
// Data: engine/tokenizer/data/llama2_vocab.tsv, derived from the npm package
// llama-tokenizer-js by tests/oracle/derive_vocab.mjs (which checks the scores
// against Llama-2's merge list); see that script for the derivation.
//
// Thread safety: Phi3Vocab may be called concurrently.
#ifndef PHI3_ENGINE_TOKENIZER_VOCAB_DATA_H_
#define PHI3_ENGINE_TOKENIZER_VOCAB_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace phi3 {

class GgufWriter;

// llama.cpp's token type values (tokenizer.ggml.token_type).
enum TokenType : int32_t {
  kTokenTypeUndefined = 0,
  kTokenTypeNormal = 1,
  kTokenTypeUnknown = 2,
  kTokenTypeControl = 3,
  kTokenTypeUserDefined = 4,
  kTokenTypeUnused = 5,
  kTokenTypeByte = 6,
};

// How a file marks Phi-3's 11 added tokens. Files converted by current
// llama.cpp mark them CONTROL (they are "special" in tokenizer.json); older
// files (e.g. early 2024 conversions) mark them USER_DEFINED, which llama.cpp
// matches in text even without special-token parsing.
enum class AddedTokenKind { kControl, kUserDefined };

inline constexpr int32_t kPhi3VocabRows = 32064;
inline constexpr int32_t kLlama2VocabSize = 32000;
inline constexpr int32_t kPhi3EndOfTextId = 32000;  // <|endoftext|>
inline constexpr int32_t kPhi3AssistantId = 32001;  // <|assistant|>
inline constexpr int32_t kPhi3SystemId = 32006;     // <|system|>
inline constexpr int32_t kPhi3EndId = 32007;        // <|end|>
inline constexpr int32_t kPhi3UserId = 32010;       // <|user|>

// Everything llama.cpp reads from the tokenizer.ggml.* keys for a `llama`
// (SentencePiece) vocabulary.
struct VocabData {
  std::string model = "llama";  // tokenizer.ggml.model
  std::string pre = "default";  // tokenizer.ggml.pre
  std::vector<std::string> tokens;   // [n] raw bytes, U+2581 for spaces
  std::vector<float> scores;         // [n]
  std::vector<int32_t> token_types;  // [n] TokenType values
  int32_t bos_id = 1;                // <s>
  int32_t eos_id = kPhi3EndOfTextId;
  int32_t unk_id = 0;                // <unk>
  int32_t pad_id = kPhi3EndOfTextId;
  bool add_bos = true;   // tokenizer.ggml.add_bos_token
  bool add_eos = false;  // tokenizer.ggml.add_eos_token
};

// The full 32,064-row Phi-3 vocabulary (see the file comment).
VocabData Phi3Vocab(AddedTokenKind kind = AddedTokenKind::kControl);

// Adds the tokenizer.ggml.* keys for `vocab` to `writer`: model, pre, tokens,
// scores, token_type, bos/eos/unknown/padding_token_id, add_bos/add_eos_token.
// Errors: whatever GgufWriter::Add returns (e.g. a duplicate key).
absl::Status AddVocabToGguf(const VocabData& vocab, GgufWriter& writer);

}  // namespace phi3

#endif  // PHI3_ENGINE_TOKENIZER_VOCAB_DATA_H_
