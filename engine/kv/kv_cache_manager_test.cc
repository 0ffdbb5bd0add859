#include "engine/kv/kv_cache_manager.h"

#include <numeric>
#include <vector>

#include "gtest/gtest.h"

namespace phi3 {
namespace {

std::vector<int32_t> Range(int n, int32_t start = 100) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(KvCacheManagerTest, ReusesLongestPrefixButNeverTheLastToken) {
  KvCacheManager kv(16, 4, true);
  SequenceKv a;
  kv.Init(&a, "");
  auto tokens = Range(12);  // exactly 3 blocks
  std::vector<int32_t> hits;
  kv.FindPrefix(&a, tokens, &hits);
  EXPECT_TRUE(hits.empty());
  kv.Grow(&a, 12);
  EXPECT_EQ(a.block_table.size(), 3u);
  kv.Commit(&a, tokens, 12);
  EXPECT_EQ(a.num_committed_blocks, 3);

  // Same 12 tokens: only 2 blocks reusable, the 3rd holds the last token.
  SequenceKv b;
  kv.Init(&b, "");
  kv.FindPrefix(&b, tokens, &hits);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0], a.block_table[0]);
  EXPECT_EQ(kv.CostOfHits(hits), 0);  // still referenced by a
  kv.TakeHits(&b, hits);
  EXPECT_EQ(kv.pool().refcount(a.block_table[0]), 2);
  EXPECT_EQ(kv.BlocksNeeded(b, 12), 1);
  kv.Grow(&b, 12);
  EXPECT_NE(b.block_table[2], a.block_table[2]);

  // Longer prompt sharing 2 blocks and diverging in the 3rd.
  auto other = Range(20);
  other[9] = 7;
  SequenceKv c;
  kv.Init(&c, "");
  kv.FindPrefix(&c, other, &hits);
  EXPECT_EQ(hits.size(), 2u);

  // After a and b are freed the blocks stay findable, at a cost.
  EXPECT_EQ(kv.NumExclusiveBlocks(a), 1);
  kv.Free(&a);
  kv.Free(&b);
  EXPECT_EQ(kv.pool().num_used(), 0);
  kv.FindPrefix(&c, other, &hits);
  EXPECT_EQ(hits.size(), 2u);
  EXPECT_EQ(kv.CostOfHits(hits), 2);
  EXPECT_TRUE(kv.pool().CheckInvariants().ok());
}

TEST(KvCacheManagerTest, TenantSaltIsolates) {
  KvCacheManager kv(8, 2, true);
  SequenceKv a, b, c;
  auto tokens = Range(5);
  kv.Init(&a, "alice");
  kv.Grow(&a, 5);
  kv.Commit(&a, tokens, 5);
  std::vector<int32_t> hits;
  kv.Init(&b, "bob");
  kv.FindPrefix(&b, tokens, &hits);
  EXPECT_TRUE(hits.empty());
  kv.Init(&c, "alice");
  kv.FindPrefix(&c, tokens, &hits);
  EXPECT_EQ(hits.size(), 2u);
}

TEST(KvCacheManagerTest, DisabledCacheNeverHits) {
  KvCacheManager kv(8, 2, false);
  SequenceKv a, b;
  auto tokens = Range(6);
  kv.Init(&a, "");
  kv.Grow(&a, 6);
  kv.Commit(&a, tokens, 6);
  EXPECT_FALSE(kv.pool().is_cached(a.block_table[0]));
  std::vector<int32_t> hits;
  kv.Init(&b, "");
  kv.FindPrefix(&b, tokens, &hits);
  EXPECT_TRUE(hits.empty());
}

TEST(KvCacheManagerTest, CommitOnlyFullComputedBlocks) {
  KvCacheManager kv(8, 4, true);
  SequenceKv a;
  auto tokens = Range(10);
  kv.Init(&a, "");
  kv.Grow(&a, 10);
  kv.Commit(&a, tokens, 7);
  EXPECT_EQ(a.num_committed_blocks, 1);
  EXPECT_TRUE(kv.pool().is_cached(a.block_table[0]));
  EXPECT_FALSE(kv.pool().is_cached(a.block_table[1]));
  kv.Commit(&a, tokens, 10);
  EXPECT_EQ(a.num_committed_blocks, 2);
  EXPECT_FALSE(kv.pool().is_cached(a.block_table[2]));
}

}  // namespace
}  // namespace phi3
