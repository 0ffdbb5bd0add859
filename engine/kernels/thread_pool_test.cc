#include "engine/kernels/thread_pool.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace phi3 {
namespace {

TEST(ThreadPoolTest, EveryItemOnceWithTheDocumentedPartition) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1001}) {
      std::vector<std::atomic<int>> hits(n);
      pool.ParallelFor(n, [&](int64_t begin, int64_t end, int ti) {
        ASSERT_LT(begin, end);
        ASSERT_GE(ti, 0);
        ASSERT_LT(ti, threads);
        if (n > 1) {
          EXPECT_EQ(begin, n * ti / threads);
          EXPECT_EQ(end, n * (ti + 1) / threads);
        }
        for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << n << " " << i;
    }
  }
}

TEST(ThreadPoolTest, ManyShortJobsAndResultsVisible) {
  ThreadPool pool(3);
  std::vector<int64_t> out(300);
  for (int round = 0; round < 3000; ++round) {
    pool.ParallelFor(3, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) out[i * 100] = round;
    });
    ASSERT_EQ(out[0] + out[100] + out[200], 3 * round);
  }
}

TEST(ThreadPoolTest, ConcurrentCallersAreSerialised) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        pool.ParallelFor(10, [&](int64_t b, int64_t e, int) { total.fetch_add(e - b); });
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 3 * 2000 * 10);
}

TEST(ThreadPoolTest, IdlePoolSleepsAndWakes) {
  ThreadPool pool(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // workers go to sleep
  std::atomic<int> calls{0};
  pool.ParallelFor(2, [&](int64_t, int64_t, int) { calls.fetch_add(1); });
  EXPECT_EQ(calls.load(), 2);
}

TEST(ThreadPoolTest, DynamicCoversEveryItemOnceInChunks) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 64, 1001}) {
      for (int64_t chunk : {1, 3, 64, 5000}) {
        std::vector<std::atomic<int>> hits(n);
        pool.ParallelForDynamic(n, chunk, [&](int64_t begin, int64_t end, int ti) {
          ASSERT_LT(begin, end);
          ASSERT_LE(end - begin, chunk);
          ASSERT_GE(ti, 0);
          ASSERT_LT(ti, threads);
          for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << n << " " << chunk;
      }
    }
  }
}

// The point of dynamic chunks: while one participant is stuck (here: the
// caller sleeps in its first chunk), the others take the remaining chunks.
TEST(ThreadPoolTest, DynamicChunksFlowAroundAStalledParticipant) {
  ThreadPool pool(2);
  std::atomic<int64_t> by_caller{0}, by_worker{0};
  std::atomic<bool> stalled{false};
  pool.ParallelForDynamic(100, 1, [&](int64_t begin, int64_t end, int ti) {
    if (ti == 0 && !stalled.exchange(true)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    (ti == 0 ? by_caller : by_worker).fetch_add(end - begin);
  });
  EXPECT_EQ(by_caller.load() + by_worker.load(), 100);
  EXPECT_GE(by_worker.load(), 90);
}

}  // namespace
}  // namespace phi3
