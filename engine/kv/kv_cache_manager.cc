#include "engine/kv/kv_cache_manager.h"

#include <cassert>

namespace phi3 {

KvCacheManager::KvCacheManager(int num_blocks, int block_size, bool enable_prefix_cache)
    : pool_(num_blocks, block_size), enable_prefix_cache_(enable_prefix_cache) {}

void KvCacheManager::Init(SequenceKv* seq, std::string_view salt) const {
  seq->root_hash = BlockPool::RootHash(salt);
  seq->block_table.clear();
  seq->block_hashes.clear();
  seq->num_committed_blocks = 0;
}

void KvCacheManager::ExtendHashes(SequenceKv* seq, std::span<const int32_t> tokens,
                                  int num_blocks) const {
  const int bs = block_size();
  while (static_cast<int>(seq->block_hashes.size()) < num_blocks) {
    const size_t i = seq->block_hashes.size();
    const uint64_t parent = i == 0 ? seq->root_hash : seq->block_hashes[i - 1];
    seq->block_hashes.push_back(BlockPool::ChainHash(parent, tokens.subspan(i * bs, bs)));
  }
}

void KvCacheManager::FindPrefix(SequenceKv* seq, std::span<const int32_t> tokens,
                                std::vector<int32_t>* hits) const {
  hits->clear();
  if (!enable_prefix_cache_ || tokens.empty()) return;
  const int bs = block_size();
  const int max_blocks = (static_cast<int>(tokens.size()) - 1) / bs;
  ExtendHashes(seq, tokens, max_blocks);
  for (int i = 0; i < max_blocks; ++i) {
    const uint64_t parent = i == 0 ? seq->root_hash : seq->block_hashes[i - 1];
    const int32_t block =
        pool_.FindCached(seq->block_hashes[i], parent, tokens.subspan(i * bs, bs));
    if (block < 0) break;
    hits->push_back(block);
  }
}

int KvCacheManager::CostOfHits(std::span<const int32_t> hits) const {
  int cost = 0;
  for (int32_t b : hits) cost += pool_.refcount(b) == 0;
  return cost;
}

int KvCacheManager::BlocksNeeded(const SequenceKv& seq, int num_tokens) const {
  const int want = (num_tokens + block_size() - 1) / block_size();
  const int have = static_cast<int>(seq.block_table.size());
  return want > have ? want - have : 0;
}

int KvCacheManager::NumExclusiveBlocks(const SequenceKv& seq) const {
  int n = 0;
  for (int32_t b : seq.block_table) n += pool_.refcount(b) == 1;
  return n;
}

void KvCacheManager::TakeHits(SequenceKv* seq, std::span<const int32_t> hits) {
  assert(seq->block_table.empty());
  for (int32_t b : hits) {
    pool_.Ref(b);
    seq->block_table.push_back(b);
  }
  seq->num_committed_blocks = static_cast<int>(hits.size());
}

void KvCacheManager::Grow(SequenceKv* seq, int num_tokens) {
  for (int n = BlocksNeeded(*seq, num_tokens); n > 0; --n) {
    seq->block_table.push_back(pool_.Allocate());
  }
}

void KvCacheManager::Commit(SequenceKv* seq, std::span<const int32_t> tokens, int num_computed) {
  if (!enable_prefix_cache_) return;
  const int bs = block_size();
  const int full = num_computed / bs;
  if (full <= seq->num_committed_blocks) return;
  ExtendHashes(seq, tokens, full);
  for (int i = seq->num_committed_blocks; i < full; ++i) {
    const uint64_t parent = i == 0 ? seq->root_hash : seq->block_hashes[i - 1];
    const int32_t block = seq->block_table[i];
    if (!pool_.is_cached(block)) {
      pool_.Register(block, seq->block_hashes[i], parent, tokens.subspan(i * bs, bs));
    }
  }
  seq->num_committed_blocks = full;
}

void KvCacheManager::Free(SequenceKv* seq) {
  for (auto it = seq->block_table.rbegin(); it != seq->block_table.rend(); ++it) {
    pool_.Release(*it);
  }
  seq->block_table.clear();
  seq->num_committed_blocks = 0;
}

}  // namespace phi3
