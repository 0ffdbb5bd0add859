// The Phi-3 chat template. Input: messages separated by 0xFF bytes, each
// starting with a role byte. Properties: encoding never fails on non-empty
// input; ids are in the vocabulary; the template's own tokens appear once per
// turn, whatever the contents say (no turn injection); contents without '<'
// give exactly Encode(RenderPhi3Chat(...), add_bos, parse_special = true).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_split.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const phi3::Tokenizer* tok = new phi3::Tokenizer(phi3::Tokenizer::Phi3());
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<phi3::ChatTurn> turns;
  bool has_angle = false;
  for (absl::string_view part : absl::StrSplit(input, '\xff')) {
    if (part.empty() || turns.size() >= 16) continue;
    phi3::ChatTurn turn;
    turn.role = static_cast<phi3::ChatRole>(static_cast<uint8_t>(part[0]) % 3);
    turn.content = std::string(part.substr(1));
    has_angle |= turn.content.find('<') != std::string::npos;
    turns.push_back(std::move(turn));
  }
  absl::StatusOr<std::vector<int32_t>> ids = phi3::EncodePhi3Chat(*tok, turns);
  if (turns.empty()) {
    FUZZ_CHECK(!ids.ok());
    return 0;
  }
  FUZZ_CHECK(ids.ok());
  int num_user = 0, num_end = 0;
  const int32_t user_id = *tok->TokenId("<|user|>"), end_id = *tok->TokenId("<|end|>");
  for (int32_t id : *ids) {
    FUZZ_CHECK(id >= 0 && id < tok->vocab_size());
    num_user += id == user_id;
    num_end += id == end_id;
  }
  int want_user = 0;
  for (const phi3::ChatTurn& t : turns) want_user += t.role == phi3::ChatRole::kUser;
  FUZZ_CHECK(num_user == want_user);
  FUZZ_CHECK(num_end == static_cast<int>(turns.size()));
  if (!has_angle) {
    FUZZ_CHECK(*ids == tok->Encode(phi3::RenderPhi3Chat(turns, true), true, true));
  }
  return 0;
}
