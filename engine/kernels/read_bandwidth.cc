#include "engine/kernels/read_bandwidth.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
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

ReadBandwidth MeasureReadBandwidth(int num_threads, int64_t buffer_bytes, int repetitions) {
  // Each thread's share a whole number of 4 KiB pages (patterns step 256 bytes).
  buffer_bytes = buffer_bytes / (4096 * num_threads) * (4096 * num_threads);
  constexpr int64_t kHugePage = int64_t{2} << 20;
  const int64_t alloc_bytes = (buffer_bytes + kHugePage - 1) / kHugePage * kHugePage;
  auto* raw = static_cast<uint8_t*>(std::aligned_alloc(kHugePage, alloc_bytes));
  std::unique_ptr<uint8_t, decltype(&std::free)> buffer(raw, &std::free);
  // Huge pages where granted (advisory), as the packed weights get them: the
  // test then measures the memory, not page walks.
  madvise(raw, alloc_bytes, MADV_HUGEPAGE);
  // Written once so every page is resident and distinct (no shared zero page).
  for (int64_t i = 0; i < buffer_bytes; i += 8) {
    const uint64_t v = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
    std::memcpy(raw + i, &v, 8);
  }
  const std::vector<internal::ReadPattern> patterns = ReadPatterns();
  const int64_t share = buffer_bytes / num_threads;
  std::atomic<uint64_t> sink{0};
  ReadBandwidth best;
  for (int rep = 0; rep < repetitions; ++rep) {
    for (const internal::ReadPattern& p : patterns) {
      const double seconds = BestConcurrentSeconds(num_threads, 1, [&](int t) {
        sink.fetch_add(p.sum(raw + t * share, share), std::memory_order_relaxed);
      });
      const double rate = static_cast<double>(buffer_bytes) / seconds;
      if (rate > best.bytes_per_second) best = {rate, p.name};
    }
  }
  if (sink.load() == 42) std::abort();  // keeps the sums observable
  return best;
}

}  // namespace phi3
