#include "engine/tokenizer/detokenizer.h"

#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

const Tokenizer& Phi3() {
  static const Tokenizer* t = new Tokenizer(Tokenizer::Phi3(AddedTokenKind::kControl));
  return *t;
}

// Byte token id of byte b.
int32_t B(uint8_t b) { return 3 + b; }

bool IsValidUtf8(const std::string& s) { return ReplaceInvalidUtf8(s) == s; }

TEST(Utf8Test, ReplaceInvalidUtf8FollowsWhatwg) {
  EXPECT_EQ(ReplaceInvalidUtf8("abc \xE9\x95\x87 \xF0\x9F\xA6\x99"), "abc \xE9\x95\x87 \xF0\x9F\xA6\x99");
  EXPECT_EQ(ReplaceInvalidUtf8("\x80"), "\xEF\xBF\xBD");
  EXPECT_EQ(ReplaceInvalidUtf8("\xF0\x9F\xA6"), "\xEF\xBF\xBD");           // truncated: one
  EXPECT_EQ(ReplaceInvalidUtf8("\xF0\x9F\xA6z"), "\xEF\xBF\xBDz");         // maximal subpart
  EXPECT_EQ(ReplaceInvalidUtf8("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");   // overlong
  EXPECT_EQ(ReplaceInvalidUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(ReplaceInvalidUtf8("\xE4\xB8\xE4\xB8\xAD"), "\xEF\xBF\xBD\xE4\xB8\xAD");
  EXPECT_EQ(ReplaceInvalidUtf8("\xF4\x90\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Utf8Test, CompleteUtf8Prefix) {
  EXPECT_EQ(CompleteUtf8Prefix(""), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("ab"), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xF0\x9F"), 1u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xF0\x9F\xA6\x99"), 5u);
  EXPECT_EQ(CompleteUtf8Prefix("a\x80"), 2u);        // invalid bytes are complete
  EXPECT_EQ(CompleteUtf8Prefix("\xF0\x9F" "a"), 3u);  // proven invalid by 'a'
  EXPECT_EQ(CompleteUtf8Prefix("\xE4\xB8\xE4\xB8"), 2u);
}

TEST(StreamingDetokenizerTest, ByteTokensAcrossSteps) {
  StreamingDetokenizer d(Phi3());
  // "▁" then 🦙 as four byte tokens, then "▁Hello".
  EXPECT_EQ(d.Push(29871), "");  // the first token's leading space is removed
  EXPECT_EQ(d.Push(B(0xF0)), "");
  EXPECT_EQ(d.Push(B(0x9F)), "");
  EXPECT_EQ(d.Push(B(0xA6)), "");
  EXPECT_EQ(d.pending_bytes(), 3u);
  EXPECT_EQ(d.Push(B(0x99)), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(d.Push(15043), " Hello");
  EXPECT_EQ(d.Finish(), "");
}

TEST(StreamingDetokenizerTest, InvalidSequencesAreReleased) {
  StreamingDetokenizer raw(Phi3(), {.continuation = true});
  EXPECT_EQ(raw.Push(B(0xE4)), "");
  EXPECT_EQ(raw.Push(15043), "\xE4 Hello");  // proven invalid: released raw
  EXPECT_EQ(raw.Push(B(0xE4)), "");
  EXPECT_EQ(raw.Finish(), "\xE4");

  StreamingDetokenizer fixed(Phi3(), {.continuation = true, .replace_invalid_utf8 = true});
  EXPECT_EQ(fixed.Push(B(0xE4)), "");
  EXPECT_EQ(fixed.Push(B(0xB8)), "");
  EXPECT_EQ(fixed.Push(15043), "\xEF\xBF\xBD Hello");
  EXPECT_EQ(fixed.Push(B(0xF0)), "");
  EXPECT_EQ(fixed.Finish(), "\xEF\xBF\xBD");
}

TEST(StreamingDetokenizerTest, ContinuationKeepsTheLeadingSpace) {
  StreamingDetokenizer d(Phi3(), {.continuation = true});
  EXPECT_EQ(d.Push(15043), " Hello");
  StreamingDetokenizer bos(Phi3(), {.remove_special = true});
  EXPECT_EQ(bos.Push(1), "");
  EXPECT_EQ(bos.Push(15043), " Hello");  // as Decode: a dropped BOS keeps the space
}

// Concatenated deltas equal Decode of the whole sequence, for random sequences
// rich in byte tokens (valid and broken multi-byte characters), special tokens
// and pad rows.
TEST(StreamingDetokenizerTest, RandomSequencesConcatenateToDecode) {
  std::mt19937 rng(7);
  const std::vector<std::string> chars = {"\xE9\x95\x87", "\xF0\x9F\xA6\x99", "\xC3\xA9", "\xEA\x99\x8A",
                                          "a", "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9"};
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<int32_t> ids;
    const int n = 1 + static_cast<int>(rng() % 20);
    for (int k = 0; k < n; ++k) {
      switch (rng() % 5) {
        case 0: ids.push_back(static_cast<int32_t>(rng() % 32064)); break;
        case 1: ids.push_back(B(static_cast<uint8_t>(rng()))); break;
        case 2:
          for (unsigned char c : chars[rng() % chars.size()]) ids.push_back(B(c));
          break;
        case 3: ids.push_back(std::vector<int32_t>{0, 1, 2, 32000, 32007, 32010, 32011}[rng() % 7]); break;
        default: ids.push_back(std::vector<int32_t>{29871, 259, 13, 15043, 3186}[rng() % 5]); break;
      }
    }
    for (int mode = 0; mode < 8; ++mode) {
      DetokenizerOptions o{.remove_special = (mode & 1) != 0,
                           .unparse_special = (mode & 2) != 0,
                           .replace_invalid_utf8 = (mode & 4) != 0};
      StreamingDetokenizer d(Phi3(), o);
      std::string all;
      for (int32_t id : ids) {
        const std::string delta = d.Push(id);
        if (o.replace_invalid_utf8) {
          ASSERT_TRUE(IsValidUtf8(delta));
        }
        all += delta;
      }
      all += d.Finish();
      std::string want = Phi3().Decode(ids, o.remove_special, o.unparse_special);
      if (o.replace_invalid_utf8) want = ReplaceInvalidUtf8(want);
      ASSERT_EQ(all, want) << "iteration " << iter << " mode " << mode;
    }
  }
}

}  // namespace
}  // namespace phi3
