#include "service/testing/fake_engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace phi3::service::testing {

FakeEngine::FakeEngine(FakeEngineOptions options) : options_(options) {
  info_.name = "fake";
  info_.architecture = "phi3";
  info_.file_path = "/dev/null";
  info_.file_sha256 = std::string(64, '0');
  info_.quantization = "f32";
  info_.context_length = options_.context_size;
  info_.context_size = options_.context_size;
  info_.vocab_size = options_.vocab_size;
  info_.num_layers = 1;
  info_.embedding_size = 8;
  loop_ = std::thread([this] { Loop(); });
}

FakeEngine::~FakeEngine() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    paused_ = false;
  }
  loop_.join();
}

absl::StatusOr<RequestId> FakeEngine::Submit(GenerateRequest request,
                                             std::shared_ptr<TokenSink> sink) {
  absl::MutexLock lock(&mu_);
  if (request.prompt_tokens.empty()) return absl::InvalidArgumentError("empty prompt");
  int waiting = 0;
  for (const auto& a : active_) waiting += a->running ? 0 : 1;
  if (waiting >= options_.max_waiting) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "request queue is full (", waiting, " waiting, limit ", options_.max_waiting, ")"));
  }
  last_request_ = request;
  auto a = std::make_unique<Active>();
  a->id = next_id_++;
  a->request = std::move(request);
  a->sink = std::move(sink);
  a->submitted = absl::Now();
  active_.push_back(std::move(a));
  return active_.back()->id;
}

void FakeEngine::Cancel(RequestId id) {
  absl::MutexLock lock(&mu_);
  for (auto& a : active_) {
    if (a->id == id && !a->cancel) {
      a->cancel = true;
      ++num_cancelled_;
    }
  }
}

EngineStats FakeEngine::Stats() const {
  absl::MutexLock lock(&mu_);
  EngineStats s;
  for (const auto& a : active_) (a->running ? s.running_requests : s.waiting_requests)++;
  s.kv_blocks_total = 100;
  s.kv_blocks_used = s.running_requests;
  s.prefix_cache_query_tokens = 10;
  s.prefix_cache_hit_tokens = 4;
  s.steps = steps_;
  return s;
}

std::vector<int32_t> FakeEngine::Tokenize(std::string_view text, bool add_special,
                                          bool parse_special) const {
  std::vector<int32_t> ids;
  if (add_special) ids.push_back(1);
  for (char c : text) ids.push_back(TokenOf(c));
  return ids;
}

std::string FakeEngine::Detokenize(const std::vector<int32_t>& tokens) const {
  std::string text;
  for (int32_t id : tokens) {
    if (id >= 3 && id < 259) text.push_back(static_cast<char>(id - 3));
  }
  return text;
}

absl::StatusOr<std::vector<int32_t>> FakeEngine::ApplyChatTemplate(
    const std::vector<ChatMessage>& messages) const {
  std::string text;
  for (const ChatMessage& m : messages) {
    text += m.role == ChatMessage::Role::kSystem ? "S:" : m.role == ChatMessage::Role::kUser ? "U:" : "A:";
    text += m.content;
    text += "\n";
  }
  text += "A:";
  return Tokenize(text, /*add_special=*/true, /*parse_special=*/false);
}

void FakeEngine::Pause() {
  absl::MutexLock lock(&mu_);
  paused_ = true;
}

void FakeEngine::Resume() {
  absl::MutexLock lock(&mu_);
  paused_ = false;
}

int FakeEngine::num_cancelled() const {
  absl::MutexLock lock(&mu_);
  return num_cancelled_;
}

GenerateRequest FakeEngine::last_request() const {
  absl::MutexLock lock(&mu_);
  return last_request_;
}

void FakeEngine::FinishRequest(Active& a, FinishReason reason, size_t text_end) {
  FinishEvent event;
  event.reason = reason;
  if (text_end > a.emitted) event.text_tail = a.text.substr(a.emitted, text_end - a.emitted);
  // As the real engine: a request that never ran processed no prompt tokens.
  event.usage.prompt_tokens = a.running ? static_cast<int>(a.request.prompt_tokens.size()) : 0;
  event.usage.cached_prompt_tokens =
      std::min(options_.cached_prompt_tokens, event.usage.prompt_tokens);
  event.usage.completion_tokens = a.produced;
  const absl::Time now = absl::Now();
  event.timings.queue_wait = a.scheduled - a.submitted;
  event.timings.time_to_first_token = a.produced > 0 ? a.first_token - a.submitted : absl::ZeroDuration();
  event.timings.total = now - a.submitted;
  a.sink->OnFinish(event);
}

bool FakeEngine::Step(Active& a) {
  const absl::Time now = absl::Now();
  if (a.cancel) {
    FinishRequest(a, FinishReason::kCancelled, a.emitted);
    return true;
  }
  if (now >= a.request.deadline) {
    FinishRequest(a, FinishReason::kDeadline, a.emitted);
    return true;
  }
  if (a.request.prefill_only) {  // one step of "prefill", nothing sampled
    FinishRequest(a, FinishReason::kLength, 0);
    return true;
  }
  const int position = static_cast<int>(a.request.prompt_tokens.size()) + a.produced;
  const char c = static_cast<char>('a' + position % 26);
  const int32_t id = TokenOf(c);
  if (a.produced == 0) a.first_token = now;
  ++a.produced;
  a.text.append(options_.text_bytes_per_token, c);
  const auto& stops = a.request.stop.stop_token_ids;
  const bool stop_token = std::find(stops.begin(), stops.end(), id) != stops.end();
  // A stop string ends the text just before it; text that is a prefix of a
  // stop string waits.
  size_t safe_end = a.text.size();
  for (const std::string& s : a.request.stop.stop_strings) {
    size_t found = a.text.find(s, a.emitted);
    if (found != std::string::npos) {
      TokenEvent event;
      event.token_id = id;
      event.text_delta = a.text.substr(a.emitted, found - a.emitted);
      a.emitted = found;
      if (!a.sink->OnToken(event)) a.cancel = true;
      FinishRequest(a, FinishReason::kStopSequence, found);
      return true;
    }
    for (size_t k = std::min(s.size() - 1, a.text.size()); k > 0; --k) {
      if (a.text.compare(a.text.size() - k, k, s, 0, k) == 0) {
        safe_end = std::min(safe_end, a.text.size() - k);
        break;
      }
    }
  }
  safe_end = std::max(safe_end, a.emitted);
  TokenEvent event;
  event.token_id = id;
  event.text_delta = a.text.substr(a.emitted, safe_end - a.emitted);
  event.logprob = -0.5f;
  for (int i = 0; i < a.request.sampling.num_top_logprobs; ++i) {
    event.top_logprobs.push_back({id + i, -0.5f - i});
  }
  a.emitted = safe_end;
  if (!a.sink->OnToken(event)) {
    FinishRequest(a, FinishReason::kCancelled, a.emitted);
    return true;
  }
  if (stop_token) {
    FinishRequest(a, FinishReason::kStopSequence, a.text.size());
    return true;
  }
  if (a.produced >= a.request.stop.max_tokens) {
    FinishRequest(a, FinishReason::kLength, a.text.size());
    return true;
  }
  return false;
}

void FakeEngine::Loop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || (!paused_ && !active_.empty());
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_) {
        for (auto& a : active_) FinishRequest(*a, FinishReason::kCancelled, a->emitted);
        active_.clear();
        return;
      }
      ++steps_;
      int running = 0;
      const absl::Time now = absl::Now();
      for (auto& a : active_) {
        if (!a->running && running < options_.max_running) {
          a->running = true;
          a->scheduled = now;
        }
        running += a->running ? 1 : 0;
      }
      // Sinks are called under mu_ here, like an engine that holds its lock
      // while delivering events: the service must not call back into the
      // engine from a sink.
      for (auto it = active_.begin(); it != active_.end();) {
        if ((*it)->running && Step(**it)) {
          it = active_.erase(it);
        } else if (!(*it)->running && ((*it)->cancel || now >= (*it)->request.deadline)) {
          (*it)->scheduled = now;
          FinishRequest(**it, (*it)->cancel ? FinishReason::kCancelled : FinishReason::kDeadline,
                        0);
          it = active_.erase(it);
        } else {
          ++it;
        }
      }
    }
    absl::SleepFor(options_.step);
  }
}

}  // namespace phi3::service::testing
