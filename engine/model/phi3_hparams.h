// Phi-3 hyperparameters read from GGUF metadata, with the defaults and the
// derived values llama.cpp uses for the `phi3` architecture
// (src/llama-model.cpp load_hparams, src/models/phi3.cpp, src/llama-context.cpp).
//
// Thread safety: plain data.
#ifndef PHI3_ENGINE_MODEL_PHI3_HPARAMS_H_
#define PHI3_ENGINE_MODEL_PHI3_HPARAMS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_file.h"

namespace phi3 {

struct Phi3Hparams {
  std::string name;            // general.name ("" if absent)
  int context_length = 0;      // phi3.context_length (n_ctx_train)
  int embedding_length = 0;    // n_embd
  int feed_forward_length = 0; // n_ff
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;        // defaults to num_heads
  int head_dim = 0;            // n_embd / num_heads
  int rope_dims = 0;           // n_rot (<= head_dim, even); the rest passes through
  int vocab_size = 0;          // rows of token_embd.weight
  float rms_norm_eps = 0.0f;
  float rope_freq_base = 10000.0f;
  // 1 / phi3.rope.scaling.factor, or 1 when the scaling type is "none".
  float rope_freq_scale = 1.0f;
  // phi3.rope.scaling.attn_factor (default 1): ggml's rope `attn_factor`,
  // which multiplies cos and sin, so it scales both Q and K.
  float rope_attn_factor = 1.0f;
  // phi3.rope.scaling.original_context_length, default context_length. A
  // run whose (256-padded) context exceeds it uses rope_factors_long.
  int original_context_length = 0;
  // phi3.attention.sliding_window (0 if absent). Informational only: like
  // llama.cpp, attention is never windowed for phi3.
  int sliding_window = 0;

  int q_dim() const { return num_heads * head_dim; }
  int kv_dim() const { return num_kv_heads * head_dim; }
};

// Reads and validates the hyperparameters. Errors:
//   InvalidArgument  general.architecture is not "phi3"; a required key is
//                    missing (named); a value is out of range or inconsistent
//                    (e.g. embedding_length not divisible by head_count)
//   Unimplemented    a rope scaling type we do not compute ("yarn")
// vocab_size is taken from token_embd.weight (must exist and be 2-D).
absl::StatusOr<Phi3Hparams> ReadPhi3Hparams(const GgufFile& file);

// The context size llama.cpp actually allocates for a requested n_ctx
// (rounded up to a multiple of 256); it decides the LongRoPE factor set.
inline int LlamaPaddedContext(int n_ctx) { return (n_ctx + 255) / 256 * 256; }

}  // namespace phi3

#endif  // PHI3_ENGINE_MODEL_PHI3_HPARAMS_H_
