#include "engine/kv/block_pool.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace phi3 {
namespace {

std::vector<int32_t> Tokens(int block_size, int32_t seed) {
  std::vector<int32_t> t(block_size);
  for (int i = 0; i < block_size; ++i) t[i] = seed * 31 + i;
  return t;
}

TEST(BlockPoolTest, AllocateReleaseLruOrder) {
  BlockPool pool(4, 2);
  EXPECT_EQ(pool.num_free(), 4);
  int32_t a = pool.Allocate(), b = pool.Allocate();
  EXPECT_EQ(pool.num_used(), 2);
  EXPECT_EQ(pool.refcount(a), 1);
  auto ta = Tokens(2, 1), tb = Tokens(2, 2);
  uint64_t ha = BlockPool::ChainHash(BlockPool::RootHash(""), ta);
  uint64_t hb = BlockPool::ChainHash(ha, tb);
  ASSERT_TRUE(pool.Register(a, ha, BlockPool::RootHash(""), ta));
  ASSERT_TRUE(pool.Register(b, hb, ha, tb));
  // Released cached blocks go to the tail: the two never-used blocks go first.
  pool.Release(b);
  pool.Release(a);
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_EQ(pool.FindCached(ha, BlockPool::RootHash(""), ta), a);
  int32_t c = pool.Allocate(), d = pool.Allocate();
  EXPECT_NE(c, a);
  EXPECT_NE(d, b);
  EXPECT_EQ(pool.num_evictions(), 0);
  // Next is b (released first), then a.
  EXPECT_EQ(pool.Allocate(), b);
  EXPECT_EQ(pool.num_evictions(), 1);
  EXPECT_EQ(pool.FindCached(hb, ha, tb), -1);
  EXPECT_EQ(pool.FindCached(ha, BlockPool::RootHash(""), ta), a);
  EXPECT_TRUE(pool.CheckInvariants().ok());
}

TEST(BlockPoolTest, RefRevivesCachedFreeBlock) {
  BlockPool pool(2, 2);
  int32_t a = pool.Allocate();
  auto t = Tokens(2, 5);
  uint64_t root = BlockPool::RootHash("tenant");
  uint64_t h = BlockPool::ChainHash(root, t);
  ASSERT_TRUE(pool.Register(a, h, root, t));
  pool.Release(a);
  EXPECT_EQ(pool.num_free(), 2);
  pool.Ref(a);
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_EQ(pool.refcount(a), 1);
  EXPECT_NE(pool.Allocate(), a);
  EXPECT_TRUE(pool.CheckInvariants().ok());
}

TEST(BlockPoolTest, LookupVerifiesTokensAndParent) {
  BlockPool pool(2, 2);
  int32_t a = pool.Allocate();
  auto t = Tokens(2, 5);
  ASSERT_TRUE(pool.Register(a, 1234, 99, t));
  EXPECT_EQ(pool.FindCached(1234, 99, t), a);
  EXPECT_EQ(pool.FindCached(1234, 98, t), -1);  // same hash, other parent
  auto other = Tokens(2, 6);
  EXPECT_EQ(pool.FindCached(1234, 99, other), -1);  // same hash, other tokens
  // A second block with the same hash stays uncached.
  int32_t b = pool.Allocate();
  EXPECT_FALSE(pool.Register(b, 1234, 99, t));
  EXPECT_FALSE(pool.is_cached(b));
  EXPECT_TRUE(pool.CheckInvariants().ok());
}

TEST(BlockPoolTest, SaltSeparatesRoots) {
  EXPECT_NE(BlockPool::RootHash("a"), BlockPool::RootHash("b"));
  EXPECT_NE(BlockPool::RootHash(""), BlockPool::RootHash("a"));
  auto t = Tokens(4, 1);
  EXPECT_NE(BlockPool::ChainHash(1, t), BlockPool::ChainHash(2, t));
}

// Random operations; invariants checked after every one, against a model of
// who holds what.
TEST(BlockPoolTest, RandomizedInvariants) {
  constexpr int kBlocks = 32, kBlockSize = 4;
  BlockPool pool(kBlocks, kBlockSize);
  std::mt19937 rng(12345);
  std::vector<std::vector<int32_t>> holders(8);  // each holder's references
  std::vector<int> expected_refs(kBlocks, 0);
  int64_t registered = 0;
  for (int step = 0; step < 20000; ++step) {
    auto& h = holders[rng() % holders.size()];
    switch (rng() % 5) {
      case 0:
      case 1:
        if (pool.num_free() > 0) {
          int32_t b = pool.Allocate();
          ASSERT_EQ(expected_refs[b], 0);
          h.push_back(b);
          ++expected_refs[b];
        }
        break;
      case 2:
        if (!h.empty()) {
          size_t i = rng() % h.size();
          pool.Release(h[i]);
          --expected_refs[h[i]];
          h.erase(h.begin() + i);
        }
        break;
      case 3: {  // share or revive any block known to the cache
        int32_t b = rng() % kBlocks;
        if (pool.is_cached(b) || expected_refs[b] > 0) {
          pool.Ref(b);
          h.push_back(b);
          ++expected_refs[b];
        }
        break;
      }
      case 4:
        if (!h.empty()) {
          int32_t b = h[rng() % h.size()];
          if (!pool.is_cached(b)) {
            auto t = Tokens(kBlockSize, static_cast<int32_t>(rng() % 1000));
            uint64_t parent = rng() % 3;
            uint64_t hash = BlockPool::ChainHash(parent, t);
            if (pool.Register(b, hash, parent, t)) {
              ++registered;
              ASSERT_EQ(pool.FindCached(hash, parent, t), b);
            }
          }
        }
        break;
    }
    ASSERT_TRUE(pool.CheckInvariants().ok()) << pool.CheckInvariants() << " at step " << step;
    int used = 0;
    for (int32_t b = 0; b < kBlocks; ++b) {
      ASSERT_EQ(pool.refcount(b), expected_refs[b]) << "block " << b;
      used += expected_refs[b] > 0;
    }
    ASSERT_EQ(pool.num_used(), used);
  }
  EXPECT_GT(registered, 30);
  EXPECT_GT(pool.num_evictions(), 10);
}

}  // namespace
}  // namespace phi3
