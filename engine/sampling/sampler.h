// Per-request token sampler with llama.cpp semantics.
//
// Chain (llama.cpp's default order): penalties -> top_k -> top_p -> min_p ->
// temperature -> seeded draw. temperature <= 0 is greedy: the argmax of the
// penalised logits, ties broken towards the lowest token id (as llama.cpp's
// scan with a strict '>' does).
//
// Penalties (llama_sampler_penalties): over the last kPenaltyLastN tokens
// fed to Accept() (the prompt, then every sampled token), each distinct token
// with count c gets: logit <= 0 ? logit * rep : logit / rep, then
// logit -= c * frequency + presence.
//
// Logprobs are the log-softmax of the RAW model logits (before penalties,
// truncation and temperature), like vLLM's default; alternatives are the top
// N raw logprobs, ties towards the lowest id.
//
// Determinism: the draw uses a std::mt19937_64 seeded with params.seed and
// advanced once per sampled (non-greedy) token, so the same seed + params +
// prompt + logits give the same tokens regardless of batching.
//
// Thread safety: not thread-safe; one Sampler per request.
#ifndef PHI3_ENGINE_SAMPLING_SAMPLER_H_
#define PHI3_ENGINE_SAMPLING_SAMPLER_H_

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "engine/engine.h"

namespace phi3 {

inline constexpr int kPenaltyLastN = 64;

class Sampler {
 public:
  // REQUIRES: ValidateRequest accepted `params`; vocab_size > 0.
  Sampler(const SamplingParams& params, int vocab_size);

  // Pushes a token into the penalty window (drops the oldest beyond N).
  void Accept(int32_t token);

  // Picks the next token from `logits` ([vocab_size] f32). When `event` is
  // non-null and logprobs were asked for, fills event->logprob and
  // event->top_logprobs. Does not call Accept.
  int32_t Sample(std::span<const float> logits, TokenEvent* event);

  // The raw log-softmax of `logits` at `token`, and the top `n` entries.
  static float LogProb(std::span<const float> logits, int32_t token);
  static std::vector<TokenLogprob> TopLogProbs(std::span<const float> logits, int n);

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };
  bool PenaltiesActive() const;
  void ApplyPenalties(std::vector<float>& logits) const;
  double NextUniform();  // [0, 1)

  SamplingParams params_;
  int vocab_size_;
  std::mt19937_64 rng_;
  std::vector<int32_t> window_;  // ring buffer, [<= kPenaltyLastN] token ids
  int window_next_ = 0;
  absl::flat_hash_map<int32_t, int> window_counts_;
  std::vector<float> scratch_logits_;  // [vocab_size]
  std::vector<Candidate> candidates_;  // [<= vocab_size]
};

}  // namespace phi3

#endif  // PHI3_ENGINE_SAMPLING_SAMPLER_H_
