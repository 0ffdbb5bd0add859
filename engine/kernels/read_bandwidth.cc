#include "engine/kernels/read_bandwidth.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/read_bandwidth_internal.h"

namespace phi3 {
namespace {

// 64-bit loads into four independent accumulators, for CPUs without AVX2.
uint64_t SumScalar(const uint8_t* data, int64_t num_bytes) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (int64_t i = 0; i < num_bytes; i += 32) {
    uint64_t w[4];
    std::memcpy(w, data + i, 32);
    a += w[0];
    b += w[1];
    c += w[2];
    d += w[3];
  }
  return a + b + c + d;
}

std::vector<internal::ReadPattern> ReadPatterns() {
  const SimdLevel level = DetectedSimdLevel();
  if (level == SimdLevel::kScalar) return {{"scalar", &SumScalar}};
  std::vector<internal::ReadPattern> patterns = internal::Avx2ReadPatterns();
  if (level == SimdLevel::kAvx512) {
    for (const internal::ReadPattern& p : internal::Avx512ReadPatterns()) patterns.push_back(p);
  }
  return patterns;
}

// Bytes/s of one pass of `p` over [data, data + bytes) on `num_threads` threads.
double TimedPass(const internal::ReadPattern& p, int num_threads, int64_t bytes,
                 const uint8_t* data, uint64_t* sink) {
  const int64_t share = bytes / num_threads;
  std::atomic<uint64_t> sum{0};
  const double seconds = BestConcurrentSeconds(num_threads, 1, [&](int t) {
    sum.fetch_add(p.sum(data + t * share, share), std::memory_order_relaxed);
  });
  *sink += sum.load();
  return static_cast<double>(bytes) / seconds;
}

}  // namespace

double BestConcurrentSeconds(int num_threads, int repetitions,
                             absl::FunctionRef<void(int thread)> body) {
  double best_seconds = 1e30;
  for (int rep = 0; rep < repetitions; ++rep) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < num_threads; ++t) {
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) {
        }
        body(t);
      });
    }
    while (ready.load() != num_threads) {
    }
    const auto start = std::chrono::steady_clock::now();
    go.store(true, std::memory_order_release);
    for (auto& th : threads) th.join();
    best_seconds = std::min(
        best_seconds,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best_seconds;
}

ReadPassBuffer::ReadPassBuffer(int num_threads, int64_t buffer_bytes)
    : num_threads_(num_threads),
      // Each thread's share a whole number of 4 KiB pages (patterns step 256 bytes).
      bytes_(buffer_bytes / (4096 * num_threads) * (4096 * num_threads)) {
  constexpr int64_t kHugePage = int64_t{2} << 20;
  const int64_t alloc_bytes = (bytes_ + kHugePage - 1) / kHugePage * kHugePage;
  data_ = static_cast<uint8_t*>(std::aligned_alloc(kHugePage, alloc_bytes));
  // Huge pages where granted (advisory), as the packed weights get them: the
  // passes then measure the memory, not page walks.
  madvise(data_, alloc_bytes, MADV_HUGEPAGE);
  // Written once so every page is resident and distinct (no shared zero page).
  for (int64_t i = 0; i < bytes_; i += 8) {
    const uint64_t v = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
    std::memcpy(data_ + i, &v, 8);
  }
}

ReadPassBuffer::~ReadPassBuffer() {
  if (sink_ == 42) std::abort();  // keeps the sums observable
  std::free(data_);
}

double ReadPassBuffer::PassBytesPerSecond(const std::string& pattern) {
  for (const internal::ReadPattern& p : ReadPatterns()) {
    if (pattern == p.name) return TimedPass(p, num_threads_, bytes_, data_, &sink_);
  }
  return 0;
}

ReadBandwidth ReadPassBuffer::Fastest(int repetitions) {
  const std::vector<internal::ReadPattern> patterns = ReadPatterns();
  ReadBandwidth best;
  for (int rep = 0; rep < repetitions; ++rep) {
    for (const internal::ReadPattern& p : patterns) {
      const double rate = TimedPass(p, num_threads_, bytes_, data_, &sink_);
      if (rate > best.bytes_per_second) best = {rate, p.name};
    }
  }
  return best;
}

ReadBandwidth MeasureReadBandwidth(int num_threads, int64_t buffer_bytes, int repetitions) {
  return ReadPassBuffer(num_threads, buffer_bytes).Fastest(repetitions);
}

}  // namespace phi3
