// Bridges engine.h's chat messages to the tokenizer's chat template in a
// translation unit of its own: chat_template.h still aliases phi3::ChatMessage.
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer/chat_template.h"

namespace phi3::engine_internal {

// role: 0 system, 1 user, 2 assistant.
absl::StatusOr<std::vector<int32_t>> EncodeChatTurns(
    const Tokenizer& tokenizer, const std::vector<std::pair<int, std::string>>& turns) {
  std::vector<ChatTurn> messages;
  messages.reserve(turns.size());
  for (const auto& [role, content] : turns) {
    ChatTurn m;
    m.role = role == 0 ? ChatRole::kSystem : role == 1 ? ChatRole::kUser : ChatRole::kAssistant;
    m.content = content;
    messages.push_back(std::move(m));
  }
  return EncodePhi3Chat(tokenizer, messages);
}

}  // namespace phi3::engine_internal
