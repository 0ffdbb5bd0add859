// Test doubles for the engine core: a ForwardModel whose "KV" is the token
// ids themselves, a one-character-per-token TokenText, and a manual clock.
//
// FakeModel stores every written token in its slot (block, offset) and, for
// a sequence that wants logits, reads the sequence's whole history back
// THROUGH ITS BLOCK TABLE. So wrong block tables, bad prefix reuse or
// overwritten shared blocks change the output, as they would with a real
// model. The next token is `next_fn(history)`: logits put 8.0 on it and a
// deterministic pseudo-random value in [0, 4) on every other id.
#ifndef PHI3_ENGINE_SCHED_TESTING_FAKES_H_
#define PHI3_ENGINE_SCHED_TESTING_FAKES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/model/forward.h"
#include "engine/sched/engine_core.h"

namespace phi3::testing {

// A deterministic function of the whole history (hash-based by default).
using NextTokenFn = std::function<int32_t(std::span<const int32_t> history)>;
NextTokenFn HashNextToken(int vocab_size);

class FakeModel : public ForwardModel {
 public:
  FakeModel(int vocab_size, int context_length, NextTokenFn next = nullptr);

  int vocab_size() const override { return vocab_size_; }
  int context_length() const override { return context_length_; }
  int64_t KvBytesPerToken(KvCacheType type) const override {
    return type == KvCacheType::kF16 ? 1024 : 544;
  }
  absl::Status InitKvCache(int num_blocks, int block_size, KvCacheType type) override;
  absl::Status Forward(const ForwardBatch& batch, std::span<float> logits) override;

  // The logits row the model produces after `history` (for tests that
  // compute expectations without the engine).
  void Logits(std::span<const int32_t> history, std::span<float> out) const;

  // Fails the next Forward call with `status`.
  void FailNextForward(absl::Status status);
  // Called in every Forward after the K/V writes, before the batch's
  // `abandoned` hook is polled (as the real model does between layers), e.g.
  // to cancel a request while its step runs.
  void set_during_forward(std::function<void()> fn) { during_forward_ = std::move(fn); }

  struct CallRecord {
    std::vector<int> num_new_tokens;  // per sequence, in batch order
    std::vector<int> start_pos;
    std::vector<bool> want_logits;
    std::vector<int> eval_begin, eval_end;  // SequenceSlice's evaluation range
    bool abandoned = false;                 // stopped by ForwardBatch::abandoned
  };
  std::vector<CallRecord> calls() const;
  int num_calls() const;
  // Sleeps this long in every Forward (load tests).
  void set_forward_delay(absl::Duration d) { delay_ = d; }

 private:
  const int vocab_size_;
  const int context_length_;
  NextTokenFn next_;
  absl::Duration delay_ = absl::ZeroDuration();
  std::function<void()> during_forward_;
  int block_size_ = 0;
  std::vector<int32_t> slots_;  // [num_blocks][block_size] token id or -1
  mutable std::mutex mu_;       // guards the fields below it
  absl::Status fail_next_;
  std::vector<CallRecord> calls_;
};

// Token t decodes to the single character kAlphabet[t % size]; end of
// generation is `eog` (decodes to nothing).
class FakeText : public TokenText {
 public:
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz .,!?ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  explicit FakeText(int32_t eog) : eog_(eog) {}
  bool IsEndOfGeneration(int32_t token) const override { return token == eog_; }
  std::unique_ptr<TextStream> NewStream() const override;
  static std::string Decode(std::span<const int32_t> tokens);

 private:
  int32_t eog_;
};

class FakeClock : public Clock {
 public:
  absl::Time Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;  // guards the fields below it
  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
};

// Records everything a request's sink receives; thread-safe.
class RecordingSink : public TokenSink {
 public:
  // OnToken returns false once `cancel_after` tokens were received (-1: never).
  explicit RecordingSink(int cancel_after = -1) : cancel_after_(cancel_after) {}
  bool OnToken(const TokenEvent& event) override;
  void OnFinish(const FinishEvent& event) override;

  std::vector<int32_t> tokens() const;
  std::string text() const;           // deltas + tail
  std::string streamed_text() const;  // deltas only
  std::vector<TokenEvent> events() const;
  bool finished() const;
  int num_finish_calls() const;
  FinishEvent finish() const;
  bool token_after_finish() const;

 private:
  int cancel_after_;
  mutable std::mutex mu_;  // guards the fields below it
  std::vector<TokenEvent> events_;
  std::string text_;
  int num_finish_ = 0;
  bool token_after_finish_ = false;
  FinishEvent finish_;
};

}  // namespace phi3::testing

#endif  // PHI3_ENGINE_SCHED_TESTING_FAKES_H_
