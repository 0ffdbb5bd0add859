#include "engine/common/cache_line_allocator.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace phi3 {
namespace {

TEST(CacheLineAllocatorTest, EveryBufferStartsOnACacheLine) {
  std::vector<std::vector<uint8_t, CacheLineAllocator<uint8_t>>> buffers;
  for (size_t n : {1, 3, 17, 64, 100, 4096, 1 << 20}) {
    buffers.emplace_back(n, uint8_t{7});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buffers.back().data()) % 64, 0u) << n;
    EXPECT_EQ(buffers.back()[n - 1], 7);
  }
  buffers.back().assign(12345, 0);  // reallocation keeps the alignment
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buffers.back().data()) % 64, 0u);
}

}  // namespace
}  // namespace phi3
