// A persistent pool of compute threads with a low-overhead static-partition
// ParallelFor, for the ~250 kernel launches a decode step makes.
//
// Thread safety: ParallelFor may be called from any thread; concurrent calls
// are serialised (a mutex), so the pool runs one job at a time. `fn` must not
// call ParallelFor on the same pool (deadlock). The pool's threads spin
// briefly after a job and then sleep on a futex, so an
// idle pool costs no CPU.
#ifndef PHI3_ENGINE_KERNELS_THREAD_POOL_H_
#define PHI3_ENGINE_KERNELS_THREAD_POOL_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"

namespace phi3 {

class ThreadPool {
 public:
  // Body of a job: processes items [begin, end) as participant thread_index
  // (0 = the calling thread). Never called with an empty range.
  using RangeFn = absl::FunctionRef<void(int64_t begin, int64_t end, int thread_index)>;

  // REQUIRES: num_threads >= 1. Starts num_threads - 1 worker threads; the
  // thread calling ParallelFor is participant 0.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Splits [0, num_items) into num_threads() contiguous ranges (participant i
  // gets [num_items*i/N, num_items*(i+1)/N)), runs them in parallel and
  // returns when all are done. The partition depends only on num_items and
  // num_threads(). Memory written by fn is visible to the caller on return.
  void ParallelFor(int64_t num_items, RangeFn fn);

  // As ParallelFor, but participants claim chunks of `chunk` items (the last
  // one shorter) from a shared counter until none are left, so a participant
  // that the OS deschedules (a busy machine, the server's network threads)
  // delays the job by at most one chunk instead of a whole 1/N share. Which
  // participant gets which chunk is not deterministic: fn's result must not
  // depend on it. REQUIRES: chunk >= 1.
  void ParallelForDynamic(int64_t num_items, int64_t chunk, RangeFn fn);

 private:
  void Run(int64_t num_items, int64_t chunk, RangeFn fn);
  void WorkerLoop(int thread_index, uint32_t seen_generation);
  void RunShare(int thread_index);

  const int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises ParallelFor callers

  // Job state, published by bumping generation_ (release) and read by the
  // workers after they observe the new generation (acquire).
  const RangeFn* job_fn_ = nullptr;
  int64_t job_items_ = 0;
  int64_t job_chunk_ = 0;  // 0: static partition
  alignas(64) std::atomic<int64_t> next_item_{0};  // dynamic jobs' counter
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  // Sleep bookkeeping so the common (spinning) path makes no system call.
  alignas(64) std::atomic<int> sleepers_{0};
  std::atomic<int> caller_sleeping_{0};
};

}  // namespace phi3

#endif  // PHI3_ENGINE_KERNELS_THREAD_POOL_H_
