#include "engine/tools/bench/roofline.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace phi3::bench {

// roofline_avx2.cc; compiled with -mavx2, called only when the CPU has AVX2.
uint64_t SumBytesAvx2(const uint8_t* data, int64_t num_bytes);

namespace {

// Portable fallback: 64-bit loads into four independent accumulators, so the
// loop is bounded by memory, not by a dependency chain.
uint64_t SumBytesScalar(const uint8_t* data, int64_t num_bytes) {
  const auto* p = reinterpret_cast<const uint64_t*>(data);
  const int64_t n = num_bytes / 8;
  uint64_t a = 0, b = 0, c = 0, d = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  for (; i < n; ++i) a += p[i];
  return a + b + c + d;
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

double MeasureReadBandwidth(int num_threads, int64_t buffer_bytes, int repetitions) {
  buffer_bytes = buffer_bytes / (64 * num_threads) * (64 * num_threads);
  // Written once so every page is resident and distinct (no shared zero page).
  auto* raw = static_cast<uint8_t*>(std::aligned_alloc(64, buffer_bytes));
  std::unique_ptr<uint8_t, decltype(&std::free)> buffer(raw, &std::free);
  for (int64_t i = 0; i < buffer_bytes; i += 8) {
    const uint64_t v = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
    std::memcpy(raw + i, &v, 8);
  }
  const bool avx2 = __builtin_cpu_supports("avx2");
  const int64_t share = buffer_bytes / num_threads;
  std::atomic<uint64_t> sink{0};
  const double best_seconds = BestConcurrentSeconds(num_threads, repetitions, [&](int t) {
    const uint8_t* begin = raw + t * share;
    sink.fetch_add(avx2 ? SumBytesAvx2(begin, share) : SumBytesScalar(begin, share));
  });
  if (sink.load() == 42) std::abort();  // keeps the sums observable
  return static_cast<double>(buffer_bytes) / best_seconds;
}

int64_t DecodeBytesPerToken(const GgufFile& file) {
  int64_t total = 0;
  for (const GgufTensor& t : file.tensors()) {
    if (t.dims.size() < 2 || t.name == "token_embd.weight") continue;
    total += static_cast<int64_t>(t.num_bytes);
  }
  return total;
}

}  // namespace phi3::bench
