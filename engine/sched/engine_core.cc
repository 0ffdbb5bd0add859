#include "engine/sched/engine_core.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/sampling/sampler.h"
#include "engine/sampling/stop_matcher.h"

namespace phi3 {
namespace {

absl::Status OutOfRange(const char* field, int64_t value, const std::string& range) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " = ", value, " is out of range: expected ", range));
}

// A warm-up (prefill_only) is background work: computed in chunks of at most
// this many tokens, a request that arrives while it runs (the completion it
// prepares, or another user's) waits for one such chunk, about 0.7 s for
// phi3-mini on 2 cores, not for a max_batched_tokens chunk, 8x that. The
// weights are read once per chunk: a few % of a 64-token chunk's compute.
// Numerics are unchanged (the chunks form one evaluation, forward.h).
constexpr int kPrefillOnlyChunkTokens = 64;

class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

const Clock* SystemClock() {
  static const Clock* clock = new RealClock();
  return clock;
}

absl::Status ValidateSchedulingOptions(const SchedulingOptions& o) {
  if (o.kv_block_size < 1 || o.kv_block_size > 1024) {
    return OutOfRange("kv_block_size", o.kv_block_size, "[1, 1024]");
  }
  if (o.max_running_sequences < 1) {
    return OutOfRange("max_running_sequences", o.max_running_sequences, ">= 1");
  }
  if (o.max_batched_tokens < 1) {
    return OutOfRange("max_batched_tokens", o.max_batched_tokens, ">= 1");
  }
  if (o.max_waiting_requests < 0) {
    return OutOfRange("max_waiting_requests", o.max_waiting_requests, ">= 0");
  }
  return absl::OkStatus();
}

absl::Status ValidateEngineCoreOptions(const EngineCoreOptions& o) {
  if (absl::Status s = ValidateSchedulingOptions(o); !s.ok()) return s;
  if (o.context_size < 2) return OutOfRange("context_size", o.context_size, ">= 2");
  if (o.vocab_size < 1) return OutOfRange("vocab_size", o.vocab_size, ">= 1");
  const int64_t min_blocks = (o.context_size + o.kv_block_size - 1) / o.kv_block_size;
  if (o.num_kv_blocks < min_blocks) {
    return OutOfRange("num_kv_blocks", o.num_kv_blocks,
                      absl::StrCat(">= ", min_blocks, " (one full context of ", o.context_size,
                                   " tokens in blocks of ", o.kv_block_size, ")"));
  }
  return absl::OkStatus();
}

struct EngineCore::Request {
  Request(GenerateRequest r, std::shared_ptr<TokenSink> s, int vocab_size)
      : params(std::move(r)),
        sink(std::move(s)),
        sampler(params.sampling, vocab_size),
        matcher(params.stop.stop_strings) {}

  GenerateRequest params;
  std::shared_ptr<TokenSink> sink;
  Sequence seq;
  Sampler sampler;
  StopMatcher matcher;
  std::unique_ptr<TextStream> stream;
  absl::Time submit_time;
  std::optional<absl::Time> first_scheduled;
  std::optional<absl::Time> first_token;
  int num_completion_tokens = 0;
  // Prompt tokens that have had KV in the cache at some point (computed or
  // reused): what usage bills. Monotone, so a preempted request that
  // recomputes its prompt is not billed twice.
  int num_prompt_tokens_processed = 0;
};

EngineCore::EngineCore(const EngineCoreOptions& options, ForwardModel* model, const TokenText* text,
                       const Clock* clock)
    : options_(options),
      model_(model),
      text_(text),
      clock_(clock),
      kv_(options.num_kv_blocks, options.kv_block_size, options.prefix_cache),
      scheduler_({options.max_running_sequences, options.max_batched_tokens}, &kv_) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.kv_blocks_total = options.num_kv_blocks;
}

EngineCore::~EngineCore() { Shutdown(); }

void EngineCore::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void EngineCore::Shutdown() {
  std::vector<std::unique_ptr<Request>> incoming;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    incoming.swap(incoming_);
    cancels_.clear();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  Ingest(std::move(incoming));
  std::vector<Request*> all;
  for (auto& [id, r] : active_) all.push_back(r.get());
  std::sort(all.begin(), all.end(),
            [](const Request* a, const Request* b) { return a->seq.arrival < b->seq.arrival; });
  for (Request* r : all) {
    Finish(r, FinishReason::kError, absl::UnavailableError("the engine is shutting down"));
  }
  PublishStats();
}

absl::StatusOr<RequestId> EngineCore::Submit(GenerateRequest request,
                                             std::shared_ptr<TokenSink> sink) {
  if (sink == nullptr) return absl::InvalidArgumentError("sink must not be null");
  if (absl::Status s = ValidateRequest(request, options_.context_size, options_.vocab_size);
      !s.ok()) {
    return s;
  }
  auto r = std::make_unique<Request>(std::move(request), std::move(sink), options_.vocab_size);
  r->submit_time = clock_->Now();
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("the engine is shutting down");
  const int waiting = scheduler_waiting_ + static_cast<int>(incoming_.size());
  if (waiting >= options_.max_waiting_requests) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the waiting queue is full: ", waiting, " requests waiting (max_waiting_requests = ",
        options_.max_waiting_requests, "); retry later"));
  }
  const RequestId id = next_id_++;
  r->seq.id = id;
  incoming_.push_back(std::move(r));
  wake_.notify_one();
  return id;
}

void EngineCore::Cancel(RequestId id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  cancels_.push_back(id);
  wake_.notify_one();
}

EngineStats EngineCore::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineStats s = stats_;
  s.waiting_requests += static_cast<int>(incoming_.size());
  return s;
}

bool EngineCore::HasWorkLocked() const {
  return stopping_ || has_active_ || !incoming_.empty() || !cancels_.empty();
}

void EngineCore::Loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return HasWorkLocked(); });
      if (stopping_) return;
    }
    if (!Step()) absl::SleepFor(absl::Milliseconds(1));  // nothing schedulable: do not spin
  }
}

void EngineCore::Ingest(std::vector<std::unique_ptr<Request>> incoming) {
  for (auto& r : incoming) {
    Sequence& seq = r->seq;
    seq.tenant = r->params.tenant;
    seq.arrival = next_arrival_++;
    seq.tokens = r->params.prompt_tokens;
    seq.num_prompt_tokens = static_cast<int>(seq.tokens.size());
    if (r->params.prefill_only) {
      seq.max_chunk_tokens = kPrefillOnlyChunkTokens;
    } else {
      seq.tokens.reserve(seq.tokens.size() + r->params.stop.max_tokens);
    }
    kv_.Init(&seq.kv, r->params.cache_scope);
    for (int32_t t : seq.tokens) r->sampler.Accept(t);
    r->stream = text_->NewStream();
    scheduler_.AddWaiting(&seq);
    active_.emplace(seq.id, std::move(r));
  }
}

bool EngineCore::Step() {
  std::vector<std::unique_ptr<Request>> incoming;
  std::vector<RequestId> cancels;
  {
    std::lock_guard<std::mutex> lock(mu_);
    incoming.swap(incoming_);
    cancels.swap(cancels_);
    // Still waiting, now on the scheduler's side: keeps Submit's queue
    // limit exact during this step.
    scheduler_waiting_ += static_cast<int>(incoming.size());
  }
  bool did_work = !incoming.empty();
  Ingest(std::move(incoming));
  for (RequestId id : cancels) {
    auto it = active_.find(id);
    if (it == active_.end()) continue;
    Finish(it->second.get(), FinishReason::kCancelled, absl::OkStatus());
    did_work = true;
  }
  const absl::Time now = clock_->Now();
  std::vector<Request*> expired;
  for (auto& [id, r] : active_) {
    if (r->params.deadline <= now) expired.push_back(r.get());
  }
  std::sort(expired.begin(), expired.end(),
            [](const Request* a, const Request* b) { return a->seq.arrival < b->seq.arrival; });
  for (Request* r : expired) Finish(r, FinishReason::kDeadline, absl::OkStatus());
  did_work |= !expired.empty();

  StepPlan plan = scheduler_.Plan();
  scheduler_.Apply(plan);
  if (!plan.scheduled.empty()) {
    did_work = true;
    ++num_steps_;
    ForwardBatch batch;
    batch.sequences.reserve(plan.scheduled.size());
    int rows = 0;
    for (const ScheduledSequence& e : plan.scheduled) {
      Sequence& s = *e.seq;
      if (e.admit || s.num_computed_tokens >= s.eval_end) {
        s.eval_begin = s.num_computed_tokens;
        s.eval_end = static_cast<int>(s.tokens.size());
      }
      SequenceSlice slice;
      slice.eval_begin = s.eval_begin;
      slice.eval_end = s.eval_end;
      slice.tokens =
          std::span<const int32_t>(s.tokens).subspan(s.num_computed_tokens, e.num_new_tokens);
      slice.start_pos = s.num_computed_tokens;
      slice.block_table = s.kv.block_table;
      Request* r = active_.at(s.id).get();
      slice.want_logits = !r->params.prefill_only && s.num_computed_tokens + e.num_new_tokens ==
                                                         static_cast<int>(s.tokens.size());
      rows += slice.want_logits;
      batch.sequences.push_back(slice);
      if (!r->first_scheduled) r->first_scheduled = now;
    }
    if (!StepKeepsBlocks(plan)) {
      // Nothing of this step outlives its requests: if all of them are
      // cancelled while it runs (an editor's next keystroke), the model
      // stops between layers and the next step starts at once.
      std::vector<RequestId> ids;
      for (const ScheduledSequence& e : plan.scheduled) ids.push_back(e.seq->id);
      batch.abandoned = [this, ids = std::move(ids)] {
        std::lock_guard<std::mutex> lock(mu_);
        return std::all_of(ids.begin(), ids.end(), [this](RequestId id) {
          return std::find(cancels_.begin(), cancels_.end(), id) != cancels_.end();
        });
      };
    }
    const size_t vocab = static_cast<size_t>(options_.vocab_size);
    logits_.resize(static_cast<size_t>(rows) * vocab);
    absl::Status status = model_->Forward(batch, logits_);
    if (batch.abandoned && absl::IsCancelled(status)) {
      // Abandoned: nothing is recorded as computed; the queued cancels
      // finish every request of the batch at the start of the next step.
    } else if (!status.ok()) {
      for (const ScheduledSequence& e : plan.scheduled) {
        Finish(active_.at(e.seq->id).get(), FinishReason::kError, status);
      }
    } else {
      scheduler_.Complete(plan);
      int row = 0;
      for (size_t i = 0; i < plan.scheduled.size(); ++i) {
        const Sequence& s = *plan.scheduled[i].seq;
        Request* r = active_.at(s.id).get();
        r->num_prompt_tokens_processed =
            std::max(r->num_prompt_tokens_processed,
                     std::min(s.num_computed_tokens, s.num_prompt_tokens));
        if (batch.sequences[i].want_logits) {
          ProcessToken(r, std::span<const float>(logits_).subspan(row++ * vocab, vocab));
        } else if (r->params.prefill_only && s.num_remaining() == 0) {
          // Complete() has registered its full blocks in the prefix cache.
          Finish(r, FinishReason::kLength, absl::OkStatus());
        }
      }
    }
  }
  PublishStats();
  return did_work;
}

bool EngineCore::StepKeepsBlocks(const StepPlan& plan) const {
  if (!options_.prefix_cache) return false;
  const int bs = options_.kv_block_size;
  for (const ScheduledSequence& e : plan.scheduled) {
    const int computed = e.seq->num_computed_tokens;
    if ((computed + e.num_new_tokens) / bs > computed / bs) return true;
  }
  return false;
}

void EngineCore::ProcessToken(Request* r, std::span<const float> logits) {
  TokenEvent event;
  const int32_t token = r->sampler.Sample(logits, &event);
  event.token_id = token;
  Sequence& seq = r->seq;
  seq.tokens.push_back(token);
  r->sampler.Accept(token);
  ++r->num_completion_tokens;
  if (!r->first_token) r->first_token = clock_->Now();

  const StopParams& stop = r->params.stop;
  std::optional<FinishReason> reason;
  if (!stop.ignore_eos && text_->IsEndOfGeneration(token)) {
    reason = FinishReason::kStop;
  } else if (std::find(stop.stop_token_ids.begin(), stop.stop_token_ids.end(), token) !=
             stop.stop_token_ids.end()) {
    reason = FinishReason::kStopSequence;
  } else {
    event.text_delta = r->matcher.Push(r->stream->Push(token));
    if (r->matcher.matched()) reason = FinishReason::kStopSequence;
  }
  if (!reason && (r->num_completion_tokens >= stop.max_tokens ||
                  static_cast<int>(seq.tokens.size()) >= options_.context_size)) {
    reason = FinishReason::kLength;
  }
  const bool keep_going = r->sink->OnToken(event);
  if (!reason && !keep_going) reason = FinishReason::kCancelled;
  if (reason) Finish(r, *reason, absl::OkStatus());
}

void EngineCore::Finish(Request* r, FinishReason reason, absl::Status status) {
  const absl::Time now = clock_->Now();
  FinishEvent event;
  event.reason = reason;
  event.status = std::move(status);
  if (!r->matcher.matched()) event.text_tail = r->matcher.Push(r->stream->Flush());
  event.text_tail += r->matcher.TakeHeld();
  event.usage.prompt_tokens = r->num_prompt_tokens_processed;
  // Reused blocks whose step then failed were never used: not billed.
  event.usage.cached_prompt_tokens =
      std::min(r->seq.cached_prompt_tokens, r->num_prompt_tokens_processed);
  event.usage.completion_tokens = r->num_completion_tokens;
  event.timings.queue_wait = r->first_scheduled.value_or(now) - r->submit_time;
  event.timings.time_to_first_token =
      r->first_token ? *r->first_token - r->submit_time : absl::ZeroDuration();
  event.timings.total = now - r->submit_time;
  scheduler_.Remove(&r->seq);
  // Keep the request alive until its sink has returned.
  auto node = active_.extract(r->seq.id);
  node.mapped()->sink->OnFinish(event);
}

void EngineCore::PublishStats() {
  const BlockPool& pool = kv_.pool();
  std::lock_guard<std::mutex> lock(mu_);
  scheduler_waiting_ = scheduler_.num_waiting();
  has_active_ = !active_.empty();
  stats_.running_requests = scheduler_.num_running();
  stats_.waiting_requests = scheduler_waiting_;
  stats_.kv_blocks_total = pool.num_blocks();
  stats_.kv_blocks_used = pool.num_used();
  stats_.prefix_cache_query_tokens = scheduler_.prefix_query_tokens();
  stats_.prefix_cache_hit_tokens = scheduler_.prefix_hit_tokens();
  stats_.kv_evictions = pool.num_evictions();
  stats_.preemptions = scheduler_.num_preemptions();
  stats_.steps = num_steps_;
}

absl::Status EngineCore::CheckInvariants() const {
  if (absl::Status s = kv_.pool().CheckInvariants(); !s.ok()) return s;
  int64_t refs = 0;
  for (const auto& [id, r] : active_) {
    const Sequence& s = r->seq;
    const int bs = kv_.block_size();
    const int covered = static_cast<int>(s.kv.block_table.size()) * bs;
    if (s.state == Sequence::State::kRunning && covered < s.num_computed_tokens) {
      return absl::InternalError(absl::StrCat("request ", id, " computed ", s.num_computed_tokens,
                                              " tokens with ", covered, " slots"));
    }
    if (s.state == Sequence::State::kWaiting && !s.kv.block_table.empty()) {
      return absl::InternalError(absl::StrCat("waiting request ", id, " holds blocks"));
    }
    refs += static_cast<int64_t>(s.kv.block_table.size());
  }
  int64_t pool_refs = 0;
  for (int b = 0; b < kv_.pool().num_blocks(); ++b) pool_refs += kv_.pool().refcount(b);
  if (refs != pool_refs) {
    return absl::InternalError(
        absl::StrCat("block tables hold ", refs, " references, the pool counts ", pool_refs));
  }
  return absl::OkStatus();
}

}  // namespace phi3
