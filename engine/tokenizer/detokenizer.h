// Streaming detokenizer: turns generated tokens into text one token at a time,
// emitting only complete UTF-8 characters.
//
// Contract (ids = every token pushed, in order):
//   concat(Push(ids[0]), ..., Push(ids[n-1]), Finish())
//       == Decode(ids)                          if !replace_invalid_utf8
//       == ReplaceInvalidUtf8(Decode(ids))      if replace_invalid_utf8
// where Decode = Tokenizer::Decode(ids, remove_special, unparse_special), or the
// plain concatenation of TokenPiece(id, unparse_special) when `continuation`.
//  - A valid multi-byte character is never split across deltas: bytes of an
//    incomplete sequence (e.g. the first <0xE4> of a 3-byte character) are held
//    back until the sequence completes or proves invalid.
//  - Bytes that cannot start or continue a valid sequence are released as soon
//    as that is known: raw (llama.cpp's detokenize returns them raw), or as
//    U+FFFD per maximal invalid subpart (the WHATWG/Unicode rule TextDecoder and
//    V8 use; what a JSON or protobuf string field needs).
//  - Finish() releases a trailing incomplete sequence (raw, or one U+FFFD).
// remove_special only drops a leading BOS (a trailing EOS cannot be known while
// streaming; Phi-3 files do not add one).
//
// Thread safety: one instance per stream; not thread-safe. The Tokenizer must
// outlive it.
#ifndef PHI3_ENGINE_TOKENIZER_DETOKENIZER_H_
#define PHI3_ENGINE_TOKENIZER_DETOKENIZER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/tokenizer/tokenizer.h"

namespace phi3 {

struct DetokenizerOptions {
  bool remove_special = false;   // as Decode: drop a leading BOS (keeps the space)
  bool unparse_special = false;  // render CONTROL/UNKNOWN tokens' text
  // The tokens continue an earlier sequence (e.g. a completion after its
  // prompt): no leading-space removal on the first token.
  bool continuation = false;
  bool replace_invalid_utf8 = false;
};

class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, DetokenizerOptions options = {});

  // Returns the text completed by `id` (often the token's piece, possibly "").
  std::string Push(int32_t id);
  // Returns the held-back bytes of an unfinished sequence; resets to the state
  // of a new stream.
  std::string Finish();
  // Bytes currently held back (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::string Drain(bool final);

  const Tokenizer* tokenizer_;
  DetokenizerOptions options_;
  bool first_ = true;
  std::string pending_;
};

// Replaces each maximal invalid subpart of `bytes` with U+FFFD (the WHATWG
// decoder's rule; same output as new TextDecoder().decode in JS).
std::string ReplaceInvalidUtf8(std::string_view bytes);

// Length of the longest prefix of `bytes` that ends on a character boundary,
// treating invalid bytes as complete: only a trailing, still-valid incomplete
// sequence (at most 3 bytes) is excluded.
size_t CompleteUtf8Prefix(std::string_view bytes);

}  // namespace phi3

#endif  // PHI3_ENGINE_TOKENIZER_DETOKENIZER_H_
