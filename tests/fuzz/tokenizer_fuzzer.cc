// The tokenizer and detokenizers on the embedded Phi-3 vocabulary.
// Input: one flags byte, then text (or token ids, two bytes each).
// Properties: ids are in the vocabulary; the streaming detokenizer gives the
// same bytes as Decode, and with replace_invalid_utf8 valid UTF-8 equal to
// ReplaceInvalidUtf8(Decode); valid UTF-8 text without U+2581 encoded
// without special parsing decodes back to itself.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/detokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

const phi3::Tokenizer& Vocab() {
  static const phi3::Tokenizer* tokenizer = new phi3::Tokenizer(phi3::Tokenizer::Phi3());
  return *tokenizer;
}

std::string Stream(const std::vector<int32_t>& ids, phi3::DetokenizerOptions options) {
  phi3::StreamingDetokenizer detokenizer(Vocab(), options);
  std::string out;
  for (int32_t id : ids) out += detokenizer.Push(id);
  return out + detokenizer.Finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const phi3::Tokenizer& tok = Vocab();
  const uint8_t flags = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool add_special = flags & 1, parse_special = flags & 2;
  std::vector<int32_t> ids;
  if (flags & 4) {  // arbitrary ids, a few out of range
    for (size_t i = 0; i + 1 < text.size(); i += 2) {
      const int v = static_cast<uint8_t>(text[i]) | static_cast<uint8_t>(text[i + 1]) << 8;
      ids.push_back(v % (tok.vocab_size() + 8) - 4);
    }
  } else {
    ids = tok.Encode(text, add_special, parse_special);
    for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < tok.vocab_size());
    // Valid UTF-8 only: like llama.cpp, an invalid lead byte swallows the
    // next bytes (a following space is already U+2581 then).
    if (!add_special && !parse_special && text.find("\xE2\x96\x81") == std::string_view::npos &&
        phi3::ReplaceInvalidUtf8(text) == text) {
      FUZZ_CHECK(tok.Decode(ids) == text);
    }
  }
  phi3::DetokenizerOptions options;
  options.unparse_special = flags & 8;
  options.remove_special = flags & 16;
  FUZZ_CHECK(Stream(ids, options) ==
             tok.Decode(ids, options.remove_special, options.unparse_special));
  options.replace_invalid_utf8 = true;
  const std::string replaced = Stream(ids, options);
  FUZZ_CHECK(replaced == phi3::ReplaceInvalidUtf8(
                             tok.Decode(ids, options.remove_special, options.unparse_special)));
  FUZZ_CHECK(phi3::CompleteUtf8Prefix(replaced) == replaced.size());
  return 0;
}
