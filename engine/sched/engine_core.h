// The serving loop behind phi3::Engine, independent of GGUF and of the real
// model and tokenizer so that it runs against fakes in tests: requests,
// continuous-batching steps over a ForwardModel, sampling, stop handling,
// sink delivery, usage, timings and stats.
//
// A step (Step()):
//   1. takes new requests and cancellations queued by other threads;
//   2. finishes cancelled requests and those past their deadline;
//   3. plans and applies a scheduling step (engine/sched/scheduler.h);
//   4. runs ONE ForwardModel::Forward over every scheduled sequence; a step
//      that would add no block to the prefix cache is abandoned between
//      layers once every request in it has been cancelled (its work would
//      be thrown away: the next step, e.g. the next keystroke's completion,
//      need not wait for it);
//   5. samples a token for every sequence whose known tokens are all in the
//      cache, checks stop conditions, and calls the sinks; a prefill_only
//      request whose prompt is all in the cache finishes instead (kLength).
//
// Sink contract (engine.h): OnToken once per sampled token in order, then
// OnFinish exactly once: on stop, length, cancel (Cancel() or OnToken
// returning false), deadline, model error and shutdown (kError with an
// UNAVAILABLE status). Sinks run on the loop thread (or the thread calling
// Step/Shutdown) with no engine lock held; they may call Submit/Cancel/Stats.
//
// Thread safety: Submit, Cancel and Stats may be called from any thread.
// Step may only be called when Start() was not (tests drive steps by hand).
#ifndef PHI3_ENGINE_SCHED_ENGINE_CORE_H_
#define PHI3_ENGINE_SCHED_ENGINE_CORE_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "engine/kv/kv_cache_manager.h"
#include "engine/model/forward.h"
#include "engine/sched/scheduler.h"
#include "engine/sched/scheduling_options.h"

namespace phi3 {

// Injectable time source (a fake clock in tests).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};
// absl::Now(); never destroyed.
const Clock* SystemClock();

// Incremental detokenization of one request's completion.
class TextStream {
 public:
  virtual ~TextStream() = default;
  // Text completed by `token`: complete UTF-8 only, possibly empty.
  virtual std::string Push(int32_t token) = 0;
  // Whatever is still pending when the stream ends.
  virtual std::string Flush() = 0;
};

// What the core needs from the tokenizer. Must be thread-compatible for
// const calls.
class TokenText {
 public:
  virtual ~TokenText() = default;
  virtual bool IsEndOfGeneration(int32_t token) const = 0;
  virtual std::unique_ptr<TextStream> NewStream() const = 0;
};

// The user's SchedulingOptions plus what the engine derives from the model
// and the KV pool size.
struct EngineCoreOptions : SchedulingOptions {
  int context_size = 4096;  // per sequence: prompt + completion tokens, >= 2
  int vocab_size = 0;       // >= 1
  int num_kv_blocks = 0;    // >= ceil(context_size / kv_block_size)
};

// Checks the option ranges above and ValidateSchedulingOptions
// (InvalidArgument naming the field).
absl::Status ValidateEngineCoreOptions(const EngineCoreOptions& options);

class EngineCore {
 public:
  // REQUIRES: ValidateEngineCoreOptions(options).ok(); model->InitKvCache(
  // num_kv_blocks, kv_block_size, ...) succeeded. model, text and clock
  // must outlive the core.
  EngineCore(const EngineCoreOptions& options, ForwardModel* model, const TokenText* text,
             const Clock* clock);
  // Shutdown().
  ~EngineCore();

  // Starts the loop thread.
  void Start();
  // Stops the loop (joining it) and finishes every request with kError /
  // UNAVAILABLE. Later Submits return UNAVAILABLE. Idempotent.
  void Shutdown();

  absl::StatusOr<RequestId> Submit(GenerateRequest request, std::shared_ptr<TokenSink> sink);
  void Cancel(RequestId id);
  EngineStats Stats() const;

  // One loop iteration on the calling thread. Returns whether it did
  // anything (took requests, finished some, or ran a forward step).
  bool Step();
  // Pool and scheduler invariants, plus "no active request => no used
  // block". Only while no loop thread runs (tests).
  absl::Status CheckInvariants() const;
  // Requests taken in by Step and not finished yet; loop thread/tests only.
  int num_active() const { return static_cast<int>(active_.size()); }
  const KvCacheManager& kv() const { return kv_; }

 private:
  struct Request;
  bool HasWorkLocked() const;  // REQUIRES: mu_ held
  void Loop();
  void Ingest(std::vector<std::unique_ptr<Request>> incoming);
  // Whether applying `plan` fills a KV block, which the prefix cache keeps
  // after its request ends.
  bool StepKeepsBlocks(const StepPlan& plan) const;
  void ProcessToken(Request* r, std::span<const float> logits);
  void Finish(Request* r, FinishReason reason, absl::Status status);
  void PublishStats();

  const EngineCoreOptions options_;
  ForwardModel* const model_;
  const TokenText* const text_;
  const Clock* const clock_;

  // std::mutex rather than absl::Mutex: Debian's absl is not built with
  // TSan, which then cannot see absl's lock edges (PHI3_SANITIZE=thread).
  mutable std::mutex mu_;
  std::condition_variable wake_;  // signalled on new work or stop
  // Guarded by mu_:
  std::vector<std::unique_ptr<Request>> incoming_;
  std::vector<RequestId> cancels_;
  bool stopping_ = false;
  bool has_active_ = false;
  int scheduler_waiting_ = 0;
  RequestId next_id_ = 1;
  EngineStats stats_;
  std::thread thread_;

  // Loop-thread state.
  KvCacheManager kv_;
  Scheduler scheduler_;
  absl::flat_hash_map<RequestId, std::unique_ptr<Request>> active_;
  uint64_t next_arrival_ = 0;
  int64_t num_steps_ = 0;
  std::vector<float> logits_;  // [rows][vocab_size]
};

}  // namespace phi3

#endif  // PHI3_ENGINE_SCHED_ENGINE_CORE_H_
