#include "engine/tokenizer/chat_template.h"

#include "absl/strings/str_cat.h"

namespace phi3 {

const char* ChatRoleName(ChatRole role) {
  switch (role) {
    case ChatRole::kSystem: return "system";
    case ChatRole::kUser: return "user";
    case ChatRole::kAssistant: return "assistant";
  }
  return "user";
}

std::string RenderPhi3Chat(std::span<const ChatTurn> messages, bool add_generation_prompt) {
  std::string out;
  for (const ChatTurn& m : messages) {
    absl::StrAppend(&out, "<|", ChatRoleName(m.role), "|>\n", m.content, "<|end|>\n");
  }
  if (add_generation_prompt) out += "<|assistant|>\n";
  return out;
}

absl::StatusOr<std::vector<int32_t>> EncodePhi3Chat(const Tokenizer& tokenizer,
                                                   std::span<const ChatTurn> messages,
                                                   const ChatTemplateOptions& options) {
  if (messages.empty()) return absl::InvalidArgumentError("chat: no messages");
  int32_t role_ids[3];
  const ChatRole roles[3] = {ChatRole::kSystem, ChatRole::kUser, ChatRole::kAssistant};
  for (int i = 0; i < 3; ++i) {
    const std::string text = absl::StrCat("<|", ChatRoleName(roles[i]), "|>");
    auto id = tokenizer.TokenId(text);
    if (!id) {
      return absl::FailedPreconditionError(
          absl::StrCat("chat: the vocabulary has no ", text, " token (not a Phi-3 vocabulary)"));
    }
    role_ids[i] = *id;
  }
  auto end_id = tokenizer.TokenId("<|end|>");
  if (!end_id) {
    return absl::FailedPreconditionError(
        "chat: the vocabulary has no <|end|> token (not a Phi-3 vocabulary)");
  }

  std::vector<EncodeFragment> fragments;
  fragments.reserve(messages.size() * 4 + 2);
  for (const ChatTurn& m : messages) {
    fragments.emplace_back(role_ids[static_cast<int>(m.role)]);
    fragments.emplace_back(TextFragment{absl::StrCat("\n", m.content), /*parse_special=*/false});
    fragments.emplace_back(*end_id);
    fragments.emplace_back(TextFragment{"\n", /*parse_special=*/false});
  }
  if (options.add_generation_prompt) {
    fragments.emplace_back(role_ids[static_cast<int>(ChatRole::kAssistant)]);
    fragments.emplace_back(TextFragment{"\n", /*parse_special=*/false});
  }
  return tokenizer.EncodeFragments(fragments, options.add_bos);
}

}  // namespace phi3
