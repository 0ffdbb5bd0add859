#include "engine/kernels/thread_pool.h"

#include <cassert>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace phi3 {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// Waiting: spin briefly (pause costs ~100 ns on some CPUs, a few ns on
// others), then yield, which on an idle machine returns at once and so keeps
// spinning at ~1 us granularity between the kernels of one forward step,
// while on an oversubscribed machine it lets the thread we wait for run;
// then sleep on the futex. Measured (kernels_bench): ~0.2 us per empty
// ParallelFor with 2 free cores, ~6 us when the cores are contended.
constexpr int kSpinIterations = 64;
constexpr int kYieldIterations = 64 + 256;

inline void Backoff(int spins) {
  if (spins < kSpinIterations) {
    CpuRelax();
  } else {
    sched_yield();
  }
}

// Direct futex calls on the atomics' words, with our own sleeper counts so
// the common (spinning) path makes no system call.
static_assert(sizeof(std::atomic<uint32_t>) == 4 && sizeof(std::atomic<int>) == 4);

template <typename T>
void FutexWait(std::atomic<T>* word, T expected) {
  syscall(SYS_futex, reinterpret_cast<int*>(word), FUTEX_WAIT_PRIVATE, static_cast<int>(expected),
          nullptr, nullptr, 0);
}

template <typename T>
void FutexWakeAll(std::atomic<T>* word) {
  syscall(SYS_futex, reinterpret_cast<int*>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr,
          0);
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) : num_threads_(num_threads < 1 ? 1 : num_threads) {
  workers_.reserve(num_threads_ - 1);
  // Each worker starts from the generation as of construction: a ParallelFor
  // issued before a worker thread first runs must still be seen as new work.
  const uint32_t initial_generation = generation_.load(std::memory_order_relaxed);
  for (int i = 1; i < num_threads_; ++i) {
    workers_.emplace_back([this, i, initial_generation] { WorkerLoop(i, initial_generation); });
  }
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  FutexWakeAll(&generation_);
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::RunShare(int thread_index) {
  const int64_t n = job_items_;
  if (job_chunk_ > 0) {
    for (;;) {
      const int64_t begin = next_item_.fetch_add(job_chunk_, std::memory_order_relaxed);
      if (begin >= n) break;
      (*job_fn_)(begin, std::min(n, begin + job_chunk_), thread_index);
    }
    return;
  }
  const int64_t begin = n * thread_index / num_threads_;
  const int64_t end = n * (thread_index + 1) / num_threads_;
  if (begin < end) (*job_fn_)(begin, end, thread_index);
}

void ThreadPool::ParallelFor(int64_t num_items, RangeFn fn) { Run(num_items, 0, fn); }

void ThreadPool::ParallelForDynamic(int64_t num_items, int64_t chunk, RangeFn fn) {
  assert(chunk >= 1);
  Run(num_items, std::max<int64_t>(chunk, 1), fn);
}

void ThreadPool::Run(int64_t num_items, int64_t chunk, RangeFn fn) {
  if (num_items <= 0) return;
  if (num_threads_ == 1 || num_items == 1 || (chunk > 0 && chunk >= num_items)) {
    if (chunk == 0) chunk = num_items;
    for (int64_t begin = 0; begin < num_items; begin += chunk) {
      fn(begin, std::min(num_items, begin + chunk), 0);
    }
    return;
  }
  std::lock_guard<std::mutex> lock(call_mu_);
  job_fn_ = &fn;
  job_items_ = num_items;
  job_chunk_ = chunk;
  next_item_.store(0, std::memory_order_relaxed);
  pending_.store(num_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) FutexWakeAll(&generation_);
  RunShare(0);
  // Wait for the workers: spin first (they usually finish within
  // microseconds of us), then sleep.
  int spins = 0;
  for (int p; (p = pending_.load(std::memory_order_acquire)) != 0;) {
    if (++spins < kYieldIterations) {
      Backoff(spins);
    } else {
      caller_sleeping_.store(1, std::memory_order_seq_cst);
      if (pending_.load(std::memory_order_seq_cst) == p) FutexWait(&pending_, p);
      caller_sleeping_.store(0, std::memory_order_relaxed);
    }
  }
  job_fn_ = nullptr;
}

void ThreadPool::WorkerLoop(int thread_index, uint32_t seen) {
  while (true) {
    int spins = 0;
    uint32_t g;
    while ((g = generation_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kYieldIterations) {
        Backoff(spins);
      } else {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        if (generation_.load(std::memory_order_seq_cst) == seen) FutexWait(&generation_, seen);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    seen = g;
    if (stop_.load(std::memory_order_relaxed)) return;
    RunShare(thread_index);
    if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        caller_sleeping_.load(std::memory_order_seq_cst) != 0) {
      FutexWakeAll(&pending_);
    }
  }
}

}  // namespace phi3
