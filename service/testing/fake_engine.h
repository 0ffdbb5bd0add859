// A deterministic stand-in for the real Engine, for the service's unit tests.
//
// Tokenizer: BOS = 1 when add_special, then one token per byte (id 3 + byte).
// Completion token i of a request is the letter 'a' + (num_prompt + i) % 26
// (its byte id), one token per step of `step` duration; stop strings and stop
// token ids end it with kStopSequence, max_tokens with kLength. Text that could
// still become a stop string is held back, as the real engine does. A
// prefill_only request finishes after one step with kLength and no tokens.
//
// Thread safety: as Engine. Pause()/Resume() stop and restart the loop.
#ifndef PHI3_SERVICE_TESTING_FAKE_ENGINE_H_
#define PHI3_SERVICE_TESTING_FAKE_ENGINE_H_

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"

namespace phi3::service::testing {

struct FakeEngineOptions {
  int context_size = 512;
  int vocab_size = 300;
  int max_running = 4;
  int max_waiting = 8;
  absl::Duration step = absl::Milliseconds(1);
  int cached_prompt_tokens = 0;  // reported in usage (capped by the prompt)
  int text_bytes_per_token = 1;  // the letter repeated, to make big messages
};

class FakeEngine final : public Engine {
 public:
  explicit FakeEngine(FakeEngineOptions options);
  ~FakeEngine() override;

  absl::StatusOr<RequestId> Submit(GenerateRequest request,
                                   std::shared_ptr<TokenSink> sink) override;
  void Cancel(RequestId id) override;
  EngineStats Stats() const override;
  const ModelInfo& Info() const override { return info_; }
  std::vector<int32_t> Tokenize(std::string_view text, bool add_special,
                                bool parse_special) const override;
  std::string Detokenize(const std::vector<int32_t>& tokens) const override;
  absl::StatusOr<std::vector<int32_t>> ApplyChatTemplate(
      const std::vector<ChatMessage>& messages) const override;

  void Pause();
  void Resume();
  // Requests that ever reached Cancel() for a live request.
  int num_cancelled() const;
  // The most recent request submitted.
  GenerateRequest last_request() const;

  static int32_t TokenOf(char c) { return 3 + static_cast<unsigned char>(c); }

 private:
  struct Active {
    RequestId id;
    GenerateRequest request;
    std::shared_ptr<TokenSink> sink;
    absl::Time submitted;
    absl::Time scheduled;
    absl::Time first_token;
    bool running = false;
    bool cancel = false;
    int produced = 0;
    std::string text;       // all completion text
    size_t emitted = 0;     // bytes of text already sent
  };
  void Loop();
  // One token for `a`; returns true when it finished (and was reported).
  bool Step(Active& a);
  void FinishRequest(Active& a, FinishReason reason, size_t text_end);

  const FakeEngineOptions options_;
  ModelInfo info_;
  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<Active>> active_ ABSL_GUARDED_BY(mu_);
  RequestId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int num_cancelled_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t steps_ ABSL_GUARDED_BY(mu_) = 0;
  GenerateRequest last_request_ ABSL_GUARDED_BY(mu_);
  std::thread loop_;
};

}  // namespace phi3::service::testing

#endif  // PHI3_SERVICE_TESTING_FAKE_ENGINE_H_
