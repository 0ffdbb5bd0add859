// The one seam between the service (gRPC, metrics) and the inference engine.
//
// Thread safety: every method of Engine may be called from any thread at any
// time. Token and finish events are delivered on the engine's own loop thread;
// a TokenSink must never block (buffer and return).
#ifndef PHI3_ENGINE_ENGINE_H_
#define PHI3_ENGINE_ENGINE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/common/kv_cache_type.h"
#include "engine/common/progress.h"
#include "engine/sched/scheduling_options.h"

namespace phi3 {

// ---- Construction ----------------------------------------------------------

// The scheduling knobs (KV block size, batch limits, queue length, prefix
// cache) and their defaults come from SchedulingOptions.
struct EngineOptions : SchedulingOptions {
  std::string model_path;
  int num_threads = 0;         // compute threads; 0 = all cores
  int context_size = 0;        // per sequence; 0 = min(4096, model's)
  int64_t kv_cache_bytes = 0;  // KV pool size; 0 = enough for max_running_sequences full
                               // contexts, capped
  KvCacheType kv_cache_type = KvCacheType::kF16;
  // Progress of loading: phases "mapping and checking" (the GGUF header and
  // tensor table), "packing weights" and "hashing" (the file's SHA-256, on a
  // thread of its own, concurrent with packing). Called during Create and,
  // for hashing, until Info() has the SHA-256: it must stay callable as long
  // as the engine exists.
  ProgressCallback load_progress = nullptr;
};

// ---- Requests ----------------------------------------------------------------

// Per-request sampling settings. The accepted ranges are the table below
// ("Request ranges"); ValidateSamplingParams enforces them.
struct SamplingParams {
  float temperature = 1.0f;         // [0, kMaxTemperature]; 0 = greedy (argmax)
  int top_k = 0;                    // >= 0; 0 = no limit
  float top_p = 1.0f;               // (0, 1]
  float min_p = 0.0f;               // [0, 1)
  float repetition_penalty = 1.0f;  // (0, kMaxRepetitionPenalty]; 1 = off (llama.cpp semantics)
  float presence_penalty = 0.0f;    // [-kMaxPenalty, kMaxPenalty]
  float frequency_penalty = 0.0f;   // [-kMaxPenalty, kMaxPenalty]
  uint64_t seed = 0;                // same seed + params + prompt = same output
  int num_top_logprobs = 0;         // alternatives reported per token, [0, kMaxTopLogprobs]
  bool logprobs = false;            // report the chosen token's logprob
};

struct StopParams {
  int max_tokens = 256;                   // completion tokens, >= 1
  std::vector<std::string> stop_strings;  // matched across token boundaries, never streamed
  std::vector<int32_t> stop_token_ids;    // in addition to the model's end-of-generation ids
  bool ignore_eos = false;                // keep going past end-of-generation ids
};

struct GenerateRequest {
  std::vector<int32_t> prompt_tokens;  // tokenized prompt (BOS included if wanted), non-empty
  SamplingParams sampling;
  StopParams stop;
  std::string tenant;                  // for fair sharing and accounting
  // Prefix-cache partition: cached KV blocks are reused only between requests
  // with equal cache_scope (it roots every block hash, so neither hit counts
  // nor timing tell one scope about another's prompts). "" is one scope like
  // any other; the service gives each tenant (or share group) its own.
  std::string cache_scope;
  absl::Time deadline = absl::InfiniteFuture();
  // Prefill only (warm-up): compute the prompt's KV through the same
  // scheduling path as any prompt, leave its full blocks in the prefix cache,
  // sample nothing (no OnToken, no logits) and finish with kLength and
  // completion_tokens 0. `sampling` and `stop` are ignored.
  bool prefill_only = false;
};

// ---- Request ranges: the one table --------------------------------------------
// What ValidateRequest accepts, for every front end alike (the gRPC API, its
// proto comments and phi3-run refer here; the README lists them). A server may
// tighten a limit (e.g. fewer stop strings), never widen one. The gRPC API
// calls num_top_logprobs "top_logprobs" and stop_strings "stop".
inline constexpr float kMaxTemperature = 2.0f;         // as OpenAI's API
inline constexpr float kMaxRepetitionPenalty = 10.0f;  // beyond this, output is garbage
inline constexpr float kMaxPenalty = 2.0f;             // |presence|, |frequency|, as OpenAI's API
inline constexpr int kMaxTopLogprobs = 20;
inline constexpr int kMaxStopStrings = 16;
inline constexpr int kMaxStopStringBytes = 256;  // each stop string is 1 to 256 bytes
inline constexpr int kMaxStopTokenIds = 64;

// Each returns InvalidArgument naming the field (its path in GenerateRequest),
// the accepted range and the value given. ValidateStopParams checks the stop
// strings and ids; ValidateRequest checks everything: the prompt is
// non-empty, token ids are in [0, vocab_size), the sampling and stop ranges,
// stop.max_tokens >= 1 and prompt_tokens.size() + stop.max_tokens <=
// context_size (stop.max_tokens counts as 0 for a prefill_only request).
// (Implemented in engine/validate.cc, target phi3_engine_api.)
absl::Status ValidateSamplingParams(const SamplingParams& sampling);
absl::Status ValidateStopParams(const StopParams& stop, int vocab_size);
absl::Status ValidateRequest(const GenerateRequest& request, int context_size, int vocab_size);

// ---- Results -----------------------------------------------------------------

enum class FinishReason {
  kStop,          // an end-of-generation token (not streamed as text)
  kLength,        // max_tokens reached, or the context is full
  kStopSequence,  // a stop string or stop token id matched
  kCancelled,     // Cancel(), or the sink returned false
  kDeadline,      // the request's deadline passed
  kError,         // see FinishEvent::status
};
const char* FinishReasonName(FinishReason reason);

struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0.0f;
};

struct TokenEvent {
  int32_t token_id = 0;
  std::string text_delta;   // complete UTF-8 only; may be empty while bytes are pending
                            // or while text could still become a stop string
  float logprob = 0.0f;     // when SamplingParams::logprobs
  std::vector<TokenLogprob> top_logprobs;  // SamplingParams::num_top_logprobs entries
};

// What a request consumed, i.e. what it is billed for. A request that ends
// before its prompt was fully processed (cancelled, past its deadline, failed,
// shut down) reports only the prompt tokens that were; one that never left the
// queue reports zeros. Work redone after a preemption is not counted twice.
struct Usage {
  int prompt_tokens = 0;         // prompt tokens processed (computed or from the prefix cache)
  int cached_prompt_tokens = 0;  // of prompt_tokens, served from the prefix cache
  int completion_tokens = 0;     // tokens sampled, including a final stop token
};

struct Timings {
  absl::Duration queue_wait;            // Submit -> first scheduled
  absl::Duration time_to_first_token;   // Submit -> first token sampled
  absl::Duration total;                 // Submit -> finish
};

struct FinishEvent {
  FinishReason reason = FinishReason::kStop;
  absl::Status status;     // OK unless reason == kError
  std::string text_tail;   // text held back for stop matching and now released
  Usage usage;
  Timings timings;
};

// Receives one request's output. OnToken is called once per sampled token in
// order, then OnFinish exactly once (also after cancellation or errors).
class TokenSink {
 public:
  virtual ~TokenSink() = default;
  // Returns false to cancel the request (e.g. the client went away).
  virtual bool OnToken(const TokenEvent& event) = 0;
  virtual void OnFinish(const FinishEvent& event) = 0;
};

// ---- Introspection -------------------------------------------------------------

struct ModelInfo {
  std::string name;            // general.name
  std::string architecture;    // "phi3"
  std::string file_path;
  std::string file_sha256;     // hex, computed at load
  std::string quantization;    // dominant weight type, e.g. "q4_K"
  // Tensors per type, most first (ties by name): {{"f32", 65}, {"q4_K", 97}...}.
  std::vector<std::pair<std::string, int>> tensor_types;
  int64_t parameter_count = 0;
  int context_length = 0;      // the model's trained context
  int context_size = 0;        // per-sequence context this engine serves
  int vocab_size = 0;
  int num_layers = 0;
  int embedding_size = 0;
};

struct EngineStats {
  int running_requests = 0;
  int waiting_requests = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t prefix_cache_query_tokens = 0;   // cumulative
  int64_t prefix_cache_hit_tokens = 0;     // cumulative
  int64_t kv_evictions = 0;                // cumulative cached blocks evicted
  int64_t preemptions = 0;                 // cumulative
  int64_t steps = 0;                       // cumulative forward steps
};

struct ChatMessage {
  enum class Role { kSystem, kUser, kAssistant };
  Role role = Role::kUser;
  std::string content;
};

using RequestId = uint64_t;

class Engine {
 public:
  // Loads the model and starts the engine loop. Errors: NotFound / DataLoss /
  // Unimplemented / InvalidArgument from the loader, naming the problem.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options);
  virtual ~Engine() = default;  // cancels everything, delivers OnFinish, joins threads

  // Queues a request. Errors: InvalidArgument (ValidateRequest, prompt too
  // long for the context), ResourceExhausted (queue full), Unavailable (shut
  // down). On error the sink is never called.
  virtual absl::StatusOr<RequestId> Submit(GenerateRequest request,
                                           std::shared_ptr<TokenSink> sink) = 0;
  // Stops the request within one engine step; its sink gets OnFinish(kCancelled).
  // A step in flight whose requests are all cancelled, and which would add no
  // block to the prefix cache, stops between layers (its work is dropped).
  // Unknown or finished ids are ignored.
  virtual void Cancel(RequestId id) = 0;

  virtual EngineStats Stats() const = 0;
  virtual const ModelInfo& Info() const = 0;

  // llama_tokenize(add_special, parse_special) semantics.
  virtual std::vector<int32_t> Tokenize(std::string_view text, bool add_special,
                                        bool parse_special) const = 0;
  virtual std::string Detokenize(const std::vector<int32_t>& tokens) const = 0;
  // Phi-3 chat template, ending with the assistant prompt. Special-token
  // strings inside message contents stay plain text.
  virtual absl::StatusOr<std::vector<int32_t>> ApplyChatTemplate(
      const std::vector<ChatMessage>& messages) const = 0;
};

}  // namespace phi3

#endif  // PHI3_ENGINE_ENGINE_H_
