#include "engine/tokenizer/detokenizer.h"

#include <utility>

namespace phi3 {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// The WHATWG UTF-8 decoder as a byte-at-a-time state machine.
class Utf8Scanner {
 public:
  enum class Event { kNone, kChar, kError, kErrorRetry };
  // kChar: a character ended with this byte; kError: this byte is invalid;
  // kErrorRetry: the sequence before this byte is invalid and this byte must
  // be scanned again from the initial state.
  Event Next(uint8_t b) {
    if (needed_ == 0) {
      if (b <= 0x7F) return Event::kChar;
      if (b >= 0xC2 && b <= 0xDF) {
        needed_ = 1;
      } else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0) lower_ = 0xA0;
        if (b == 0xED) upper_ = 0x9F;
        needed_ = 2;
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0) lower_ = 0x90;
        if (b == 0xF4) upper_ = 0x8F;
        needed_ = 3;
      } else {
        return Event::kError;
      }
      return Event::kNone;
    }
    if (b < lower_ || b > upper_) {
      Reset();
      return Event::kErrorRetry;
    }
    lower_ = 0x80;
    upper_ = 0xBF;
    if (++seen_ < needed_) return Event::kNone;
    Reset();
    return Event::kChar;
  }
  bool idle() const { return needed_ == 0; }

 private:
  void Reset() {
    needed_ = seen_ = 0;
    lower_ = 0x80;
    upper_ = 0xBF;
  }
  int needed_ = 0, seen_ = 0;
  uint8_t lower_ = 0x80, upper_ = 0xBF;
};

}  // namespace

std::string ReplaceInvalidUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  Utf8Scanner scanner;
  size_t start = 0;  // first byte of the sequence in progress
  for (size_t i = 0; i < bytes.size(); ++i) {
    switch (scanner.Next(static_cast<uint8_t>(bytes[i]))) {
      case Utf8Scanner::Event::kNone:
        break;
      case Utf8Scanner::Event::kChar:
        out.append(bytes.substr(start, i + 1 - start));
        start = i + 1;
        break;
      case Utf8Scanner::Event::kError:
        out += kReplacement;
        start = i + 1;
        break;
      case Utf8Scanner::Event::kErrorRetry:
        out += kReplacement;
        start = i;
        --i;  // scan this byte again from the initial state
        break;
    }
  }
  if (!scanner.idle()) out += kReplacement;
  return out;
}

size_t CompleteUtf8Prefix(std::string_view bytes) {
  Utf8Scanner scanner;
  size_t boundary = 0;  // last position where the scanner was idle
  for (size_t i = 0; i < bytes.size(); ++i) {
    switch (scanner.Next(static_cast<uint8_t>(bytes[i]))) {
      case Utf8Scanner::Event::kNone:
        break;
      case Utf8Scanner::Event::kChar:
      case Utf8Scanner::Event::kError:
        boundary = i + 1;
        break;
      case Utf8Scanner::Event::kErrorRetry:
        boundary = i;
        --i;
        break;
    }
  }
  return scanner.idle() ? bytes.size() : boundary;
}

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, DetokenizerOptions options)
    : tokenizer_(&tokenizer), options_(options) {}

std::string StreamingDetokenizer::Push(int32_t id) {
  std::string piece;
  if (first_) {
    first_ = false;
    const bool drop_bos = options_.remove_special && tokenizer_->add_bos() &&
                          id == tokenizer_->bos_id();
    if (drop_bos) return "";
    piece = tokenizer_->TokenPiece(id, options_.unparse_special);
    if (!options_.continuation && tokenizer_->add_space_prefix() && !piece.empty() &&
        piece[0] == ' ') {
      piece.erase(0, 1);
    }
  } else {
    piece = tokenizer_->TokenPiece(id, options_.unparse_special);
  }
  pending_ += piece;
  return Drain(/*final=*/false);
}

std::string StreamingDetokenizer::Finish() {
  std::string out = Drain(/*final=*/true);
  first_ = true;
  return out;
}

std::string StreamingDetokenizer::Drain(bool final) {
  const size_t n = final ? pending_.size() : CompleteUtf8Prefix(pending_);
  std::string ready = pending_.substr(0, n);
  pending_.erase(0, n);
  return options_.replace_invalid_utf8 ? ReplaceInvalidUtf8(ready) : ready;
}

}  // namespace phi3
