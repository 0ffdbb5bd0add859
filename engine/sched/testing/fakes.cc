#include "engine/sched/testing/fakes.h"

#include <algorithm>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace phi3::testing {
namespace {

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

uint64_t HistoryHash(std::span<const int32_t> history) {
  uint64_t h = 0x1234567;
  for (int32_t t : history) h = Mix(h ^ static_cast<uint32_t>(t));
  return h;
}

class FakeStream : public TextStream {
 public:
  std::string Push(int32_t token) override {
    const int32_t one[1] = {token};
    return FakeText::Decode(one);
  }
  std::string Flush() override { return ""; }
};

}  // namespace

NextTokenFn HashNextToken(int vocab_size) {
  return [vocab_size](std::span<const int32_t> history) {
    return static_cast<int32_t>(HistoryHash(history) % vocab_size);
  };
}

FakeModel::FakeModel(int vocab_size, int context_length, NextTokenFn next)
    : vocab_size_(vocab_size),
      context_length_(context_length),
      next_(next ? std::move(next) : HashNextToken(vocab_size)) {}

absl::Status FakeModel::InitKvCache(int num_blocks, int block_size, KvCacheType type) {
  if (num_blocks < 1 || block_size < 1) return absl::InvalidArgumentError("bad kv cache size");
  block_size_ = block_size;
  slots_.assign(static_cast<size_t>(num_blocks) * block_size, -1);
  return absl::OkStatus();
}

void FakeModel::Logits(std::span<const int32_t> history, std::span<float> out) const {
  const uint64_t h = HistoryHash(history);
  for (int v = 0; v < vocab_size_; ++v) {
    out[v] = static_cast<float>(Mix(h + v) % 4000) / 1000.0f;
  }
  out[next_(history)] = 8.0f;
}

absl::Status FakeModel::Forward(const ForwardBatch& batch, std::span<float> logits) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_next_.ok()) return std::exchange(fail_next_, absl::OkStatus());
    CallRecord rec;
    for (const SequenceSlice& s : batch.sequences) {
      rec.num_new_tokens.push_back(static_cast<int>(s.tokens.size()));
      rec.start_pos.push_back(s.start_pos);
      rec.want_logits.push_back(s.want_logits);
      rec.eval_begin.push_back(s.eval_begin);
      rec.eval_end.push_back(s.eval_end);
    }
    calls_.push_back(std::move(rec));
  }
  if (delay_ > absl::ZeroDuration()) absl::SleepFor(delay_);
  if (block_size_ == 0) return absl::FailedPreconditionError("InitKvCache was not called");
  const int num_blocks = static_cast<int>(slots_.size()) / block_size_;
  absl::flat_hash_set<int64_t> written;
  auto slot_of = [&](const SequenceSlice& s, int pos, int64_t* slot) -> absl::Status {
    const size_t bi = pos / block_size_;
    if (bi >= s.block_table.size()) {
      return absl::InvalidArgumentError(absl::StrCat("position ", pos, " beyond block table"));
    }
    const int32_t block = s.block_table[bi];
    if (block < 0 || block >= num_blocks) return absl::InvalidArgumentError("bad block id");
    *slot = static_cast<int64_t>(block) * block_size_ + pos % block_size_;
    return absl::OkStatus();
  };
  // Writes first (the real model also writes K/V before attending).
  for (const SequenceSlice& s : batch.sequences) {
    if (s.tokens.empty()) return absl::InvalidArgumentError("empty slice");
    if (s.start_pos + static_cast<int>(s.tokens.size()) > context_length_) {
      return absl::InvalidArgumentError("past the context");
    }
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      int64_t slot = 0;
      if (absl::Status st = slot_of(s, s.start_pos + static_cast<int>(i), &slot); !st.ok()) {
        return st;
      }
      if (!written.insert(slot).second) {
        return absl::InternalError(absl::StrCat("two writes to slot ", slot, " in one step"));
      }
      slots_[slot] = s.tokens[i];
    }
  }
  if (during_forward_) during_forward_();
  if (batch.abandoned && batch.abandoned()) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.back().abandoned = true;
    return absl::CancelledError("step abandoned");
  }
  size_t row = 0;
  std::vector<int32_t> history;
  for (const SequenceSlice& s : batch.sequences) {
    if (!s.want_logits) continue;
    const int n = s.start_pos + static_cast<int>(s.tokens.size());
    history.resize(n);
    for (int pos = 0; pos < n; ++pos) {
      int64_t slot = 0;
      if (absl::Status st = slot_of(s, pos, &slot); !st.ok()) return st;
      history[pos] = slots_[slot];
    }
    if (logits.size() < (row + 1) * vocab_size_) return absl::InvalidArgumentError("logits");
    Logits(history, logits.subspan(row * vocab_size_, vocab_size_));
    ++row;
  }
  return absl::OkStatus();
}

void FakeModel::FailNextForward(absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_ = std::move(status);
}

std::vector<FakeModel::CallRecord> FakeModel::calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

int FakeModel::num_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(calls_.size());
}

std::unique_ptr<TextStream> FakeText::NewStream() const { return std::make_unique<FakeStream>(); }

std::string FakeText::Decode(std::span<const int32_t> tokens) {
  constexpr size_t n = sizeof(kAlphabet) - 1;
  std::string s;
  for (int32_t t : tokens) s.push_back(kAlphabet[t % n]);
  return s;
}

bool RecordingSink::OnToken(const TokenEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  if (num_finish_ > 0) token_after_finish_ = true;
  events_.push_back(event);
  text_ += event.text_delta;
  return cancel_after_ < 0 || static_cast<int>(events_.size()) < cancel_after_;
}

void RecordingSink::OnFinish(const FinishEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  ++num_finish_;
  finish_ = event;
}

std::vector<int32_t> RecordingSink::tokens() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int32_t> out;
  for (const TokenEvent& e : events_) out.push_back(e.token_id);
  return out;
}

std::string RecordingSink::text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return text_ + finish_.text_tail;
}

std::string RecordingSink::streamed_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return text_;
}

std::vector<TokenEvent> RecordingSink::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

bool RecordingSink::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return num_finish_ > 0;
}

int RecordingSink::num_finish_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return num_finish_;
}

FinishEvent RecordingSink::finish() const {
  std::lock_guard<std::mutex> lock(mu_);
  return finish_;
}

bool RecordingSink::token_after_finish() const {
  std::lock_guard<std::mutex> lock(mu_);
  return token_after_finish_;
}

}  // namespace phi3::testing
