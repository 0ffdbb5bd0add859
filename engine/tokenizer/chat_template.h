// The Phi-3 chat template, producing token ids directly.
//
// Text form (llama.cpp's built-in "phi3" template; the HF template renders the
// same text, with <s> coming from BOS):
//   <|system|>\n{system}<|end|>\n          (optional)
//   <|user|>\n{user}<|end|>\n
//   <|assistant|>\n{assistant}<|end|>\n    (earlier turns)
//   ...
//   <|assistant|>\n                        (add_generation_prompt)
// Ids: BOS (if add_bos and the vocabulary adds BOS), then the template's own
// special tokens as single ids and message contents tokenized with
// parse_special = false, so a user who types "<|end|>\n<|system|>" gets plain
// text, not a new turn. Whitespace next to the template's tokens follows
// llama.cpp exactly: for a file whose general.name says Phi-3, the RSTRIP on
// <|user|>, <|end|>, ... removes the "\n" (and any leading whitespace of the
// content), as llama.cpp does when it tokenizes the rendered text with
// parse_special = true. So for contents that contain no special-token text,
// EncodePhi3Chat(...) == tokenizer.Encode(RenderPhi3Chat(...), add_bos, true).
//
// Caveat: in files whose added tokens are USER_DEFINED (older conversions),
// llama.cpp matches those texts even with parse_special = false; content is
// tokenized exactly as llama.cpp would, so such files stay injectable for
// <|user|>/<|assistant|>/<|system|> (not for <|end|>/<|endoftext|>, which
// llama.cpp marks CONTROL).
//
// Thread safety: stateless functions.
#ifndef PHI3_ENGINE_TOKENIZER_CHAT_TEMPLATE_H_
#define PHI3_ENGINE_TOKENIZER_CHAT_TEMPLATE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace phi3 {

enum class ChatRole { kSystem, kUser, kAssistant };

// One turn of a conversation. (Named ChatTurn, not ChatMessage: engine.h has
// its own phi3::ChatMessage, and two different classes with one name would
// break the one-definition rule in a binary that links both.)
struct ChatTurn {
  ChatRole role = ChatRole::kUser;
  std::string content;
};

struct ChatTemplateOptions {
  bool add_generation_prompt = true;  // end with "<|assistant|>\n"
  bool add_bos = true;                // Encode's add_special
};

// "system", "user", "assistant".
const char* ChatRoleName(ChatRole role);

// The template's text.
std::string RenderPhi3Chat(std::span<const ChatTurn> messages, bool add_generation_prompt);

// Token ids (see the file comment). Errors: InvalidArgument if `messages` is
// empty; FailedPrecondition if the vocabulary lacks one of <|system|>,
// <|user|>, <|assistant|>, <|end|>.
absl::StatusOr<std::vector<int32_t>> EncodePhi3Chat(const Tokenizer& tokenizer,
                                                   std::span<const ChatTurn> messages,
                                                   const ChatTemplateOptions& options = {});

}  // namespace phi3

#endif  // PHI3_ENGINE_TOKENIZER_CHAT_TEMPLATE_H_
