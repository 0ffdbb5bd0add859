// Paged KV block pool with an automatic prefix cache (vLLM v1 style).
//
// Blocks hold block_size tokens of KV (the storage itself lives in the model;
// this class only does the bookkeeping). A block is
//   - referenced: refcount > 0, owned by one or more sequences' block tables;
//   - free: refcount == 0, in the free queue. A free block may still be
//     "cached": it holds a full block of known tokens under its chain hash
//     and can be revived by FindCached + Ref until it is reallocated.
// The free queue is kept in eviction order: Allocate takes the head. Freed
// cached blocks go to the tail (least recently used first out); freed
// uncached blocks go to the head (nothing to lose). Release a sequence's
// blocks last-to-first so that its deepest blocks leave first.
//
// Invariants (CheckInvariants): every block is either referenced or in the
// free queue, never both; the free queue is a well-formed list of exactly
// num_free() blocks; every cached block is in the hash map under its hash and
// the map holds only cached blocks.
//
// Content addressing: hash(block i) = Hash(hash(block i-1), tokens of block
// i), rooted at a salt (a tenant hash when tenants are isolated). A lookup
// also compares the stored tokens and parent hash, so a 64-bit collision
// cannot make a sequence reuse a block with different tokens.
//
// No allocation after construction (the hash map is reserved to num_blocks).
// Thread safety: none; owned by the engine loop thread.
#ifndef PHI3_ENGINE_KV_BLOCK_POOL_H_
#define PHI3_ENGINE_KV_BLOCK_POOL_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace phi3 {

class BlockPool {
 public:
  // REQUIRES: num_blocks > 0, block_size > 0.
  BlockPool(int num_blocks, int block_size);

  int num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  // Blocks with refcount 0 (allocatable, including evictable cached ones).
  int num_free() const { return num_free_; }
  int num_used() const { return num_blocks_ - num_free_; }
  int refcount(int32_t block) const { return refcount_[block]; }
  bool is_cached(int32_t block) const { return cached_[block] != 0; }
  int64_t num_evictions() const { return num_evictions_; }

  // Takes the head of the free queue with refcount 1; a cached block loses
  // its cache entry (an eviction). REQUIRES: num_free() > 0.
  int32_t Allocate();
  // Adds a reference; a free block leaves the free queue.
  void Ref(int32_t block);
  // Drops a reference; at zero the block joins the free queue.
  // REQUIRES: refcount(block) > 0.
  void Release(int32_t block);

  // ---- Prefix cache.
  static uint64_t RootHash(std::string_view salt);
  static uint64_t ChainHash(uint64_t parent, std::span<const int32_t> tokens);

  // The cached block holding exactly `tokens` after `parent`, or -1.
  int32_t FindCached(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) const;
  // Makes a referenced, full block findable. Returns false (and leaves the
  // block uncached) when another block already has this hash.
  // REQUIRES: refcount(block) > 0, tokens.size() == block_size(), block not cached.
  bool Register(int32_t block, uint64_t hash, uint64_t parent, std::span<const int32_t> tokens);

  // Recomputes every invariant; for tests. O(num_blocks).
  absl::Status CheckInvariants() const;

 private:
  void Unlink(int32_t block);
  void PushFront(int32_t block);
  void PushBack(int32_t block);

  int num_blocks_;
  int block_size_;
  int num_free_ = 0;
  int64_t num_evictions_ = 0;
  // Free queue: doubly linked over block ids, with sentinel num_blocks_.
  std::vector<int32_t> prev_;           // [num_blocks + 1]
  std::vector<int32_t> next_;           // [num_blocks + 1]
  std::vector<int32_t> refcount_;       // [num_blocks]
  std::vector<uint8_t> in_free_queue_;  // [num_blocks]
  std::vector<uint8_t> cached_;         // [num_blocks]
  std::vector<uint64_t> hash_;          // [num_blocks], valid when cached
  std::vector<uint64_t> parent_hash_;   // [num_blocks], valid when cached
  std::vector<int32_t> tokens_;         // [num_blocks][block_size], valid when cached
  absl::flat_hash_map<uint64_t, int32_t> by_hash_;
};

}  // namespace phi3

#endif  // PHI3_ENGINE_KV_BLOCK_POOL_H_
