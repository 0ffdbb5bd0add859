// Per-sequence block tables on top of BlockPool, and the prefix-cache
// policy: which blocks a new or resumed sequence can reuse, and which of its
// blocks become reusable once their KV is computed.
//
// Rules:
//  - Only full blocks are shared, and a sequence never reuses its whole
//    token list: at least the last token is recomputed (the step needs its
//    logits), so a lookup covers at most (num_tokens - 1) / block_size blocks.
//    Writes therefore only go to the sequence's own partial or new blocks.
//  - Positions [0, num_computed) of a sequence are in its table; a full block
//    there is registered in the cache (unless another block had the hash).
//
// Thread safety: none; owned by the engine loop thread.
#ifndef PHI3_ENGINE_KV_KV_CACHE_MANAGER_H_
#define PHI3_ENGINE_KV_KV_CACHE_MANAGER_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "engine/kv/block_pool.h"

namespace phi3 {

// KV bookkeeping of one sequence.
struct SequenceKv {
  uint64_t root_hash = 0;              // BlockPool::RootHash(salt)
  std::vector<int32_t> block_table;    // block ids, position p in [p / block_size]
  std::vector<uint64_t> block_hashes;  // chain hash of each full block of the tokens
  int num_committed_blocks = 0;        // block_table[0, n) are registered or reused
};

class KvCacheManager {
 public:
  KvCacheManager(int num_blocks, int block_size, bool enable_prefix_cache);

  BlockPool& pool() { return pool_; }
  const BlockPool& pool() const { return pool_; }
  int block_size() const { return pool_.block_size(); }
  bool prefix_cache_enabled() const { return enable_prefix_cache_; }

  // Starts a sequence's bookkeeping; `salt` separates tenants ("" = shared).
  void Init(SequenceKv* seq, std::string_view salt) const;

  // Longest reusable cached prefix of `tokens` for a sequence with an empty
  // table: fills `hits` with its block ids. Changes no pool state (it only
  // extends seq->block_hashes, a cache of pure functions of the tokens).
  void FindPrefix(SequenceKv* seq, std::span<const int32_t> tokens,
                  std::vector<int32_t>* hits) const;
  // How many free blocks taking `hits` consumes (cached blocks with refcount 0).
  int CostOfHits(std::span<const int32_t> hits) const;
  // Blocks to allocate so that the table covers num_tokens positions.
  int BlocksNeeded(const SequenceKv& seq, int num_tokens) const;
  // Blocks that return to the free queue if this sequence is freed now.
  int NumExclusiveBlocks(const SequenceKv& seq) const;

  // Takes references on `hits` as the table's first blocks.
  // REQUIRES: seq's table is empty; hits came from FindPrefix without any
  // pool change in between.
  void TakeHits(SequenceKv* seq, std::span<const int32_t> hits);
  // Grows the table to cover num_tokens positions.
  // REQUIRES: BlocksNeeded(seq, num_tokens) <= pool().num_free().
  void Grow(SequenceKv* seq, int num_tokens);
  // Registers every full block within the first num_computed tokens.
  void Commit(SequenceKv* seq, std::span<const int32_t> tokens, int num_computed);
  // Releases the table last block first; keeps the hash cache.
  void Free(SequenceKv* seq);

 private:
  void ExtendHashes(SequenceKv* seq, std::span<const int32_t> tokens, int num_blocks) const;

  BlockPool pool_;
  bool enable_prefix_cache_;
};

}  // namespace phi3

#endif  // PHI3_ENGINE_KV_KV_CACHE_MANAGER_H_
