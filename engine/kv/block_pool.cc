#include "engine/kv/block_pool.h"

#include <algorithm>
#include <cassert>

#include "absl/strings/str_cat.h"

namespace phi3 {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

BlockPool::BlockPool(int num_blocks, int block_size)
    : num_blocks_(num_blocks),
      block_size_(block_size),
      prev_(num_blocks + 1),
      next_(num_blocks + 1),
      refcount_(num_blocks, 0),
      in_free_queue_(num_blocks, 0),
      cached_(num_blocks, 0),
      hash_(num_blocks, 0),
      parent_hash_(num_blocks, 0),
      tokens_(static_cast<size_t>(num_blocks) * block_size, 0) {
  assert(num_blocks > 0 && block_size > 0);
  prev_[num_blocks_] = next_[num_blocks_] = num_blocks_;
  for (int32_t b = 0; b < num_blocks_; ++b) PushBack(b);
  by_hash_.reserve(num_blocks_);
}

void BlockPool::Unlink(int32_t block) {
  next_[prev_[block]] = next_[block];
  prev_[next_[block]] = prev_[block];
  in_free_queue_[block] = 0;
  --num_free_;
}

void BlockPool::PushFront(int32_t block) {
  const int32_t s = num_blocks_;
  prev_[block] = s;
  next_[block] = next_[s];
  prev_[next_[s]] = block;
  next_[s] = block;
  in_free_queue_[block] = 1;
  ++num_free_;
}

void BlockPool::PushBack(int32_t block) {
  const int32_t s = num_blocks_;
  next_[block] = s;
  prev_[block] = prev_[s];
  next_[prev_[s]] = block;
  prev_[s] = block;
  in_free_queue_[block] = 1;
  ++num_free_;
}

int32_t BlockPool::Allocate() {
  assert(num_free_ > 0);
  const int32_t block = next_[num_blocks_];
  Unlink(block);
  if (cached_[block]) {
    by_hash_.erase(hash_[block]);
    cached_[block] = 0;
    ++num_evictions_;
  }
  refcount_[block] = 1;
  return block;
}

void BlockPool::Ref(int32_t block) {
  if (refcount_[block]++ == 0) Unlink(block);
}

void BlockPool::Release(int32_t block) {
  assert(refcount_[block] > 0);
  if (--refcount_[block] > 0) return;
  if (cached_[block]) {
    PushBack(block);
  } else {
    PushFront(block);
  }
}

uint64_t BlockPool::RootHash(std::string_view salt) {
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (unsigned char c : salt) h = Mix(h ^ c);
  return Mix(h ^ salt.size());
}

uint64_t BlockPool::ChainHash(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t h = Mix(parent ^ 0x6a09e667f3bcc909ULL);
  for (int32_t t : tokens) h = Mix(h ^ static_cast<uint32_t>(t));
  return Mix(h ^ tokens.size());
}

int32_t BlockPool::FindCached(uint64_t hash, uint64_t parent,
                              std::span<const int32_t> tokens) const {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  const int32_t block = it->second;
  if (parent_hash_[block] != parent || tokens.size() != static_cast<size_t>(block_size_) ||
      !std::equal(tokens.begin(), tokens.end(),
                  tokens_.begin() + static_cast<size_t>(block) * block_size_)) {
    return -1;
  }
  return block;
}

bool BlockPool::Register(int32_t block, uint64_t hash, uint64_t parent,
                         std::span<const int32_t> tokens) {
  assert(refcount_[block] > 0 && !cached_[block]);
  assert(tokens.size() == static_cast<size_t>(block_size_));
  if (by_hash_.contains(hash)) return false;
  by_hash_.emplace(hash, block);
  cached_[block] = 1;
  hash_[block] = hash;
  parent_hash_[block] = parent;
  std::copy(tokens.begin(), tokens.end(),
            tokens_.begin() + static_cast<size_t>(block) * block_size_);
  return true;
}

absl::Status BlockPool::CheckInvariants() const {
  std::vector<uint8_t> seen(num_blocks_, 0);
  int count = 0;
  for (int32_t b = next_[num_blocks_], prev = num_blocks_; b != num_blocks_;
       prev = b, b = next_[b]) {
    if (b < 0 || b >= num_blocks_) return absl::InternalError(absl::StrCat("bad link ", b));
    if (prev_[b] != prev) return absl::InternalError(absl::StrCat("prev link of ", b));
    if (seen[b]++) return absl::InternalError(absl::StrCat("block ", b, " twice in free queue"));
    if (refcount_[b] != 0) {
      return absl::InternalError(absl::StrCat("block ", b, " free with refcount ", refcount_[b]));
    }
    if (!in_free_queue_[b]) return absl::InternalError(absl::StrCat("flag of ", b));
    if (++count > num_blocks_) return absl::InternalError("free queue cycle");
  }
  if (count != num_free_) {
    return absl::InternalError(
        absl::StrCat("free queue has ", count, " blocks, num_free ", num_free_));
  }
  int num_cached = 0;
  for (int32_t b = 0; b < num_blocks_; ++b) {
    if (refcount_[b] < 0) return absl::InternalError(absl::StrCat("negative refcount ", b));
    if (refcount_[b] == 0 && !seen[b]) {
      return absl::InternalError(absl::StrCat("block ", b, " unreferenced but not free"));
    }
    if (refcount_[b] > 0 && in_free_queue_[b]) {
      return absl::InternalError(absl::StrCat("block ", b, " referenced and free"));
    }
    if (cached_[b]) {
      ++num_cached;
      auto it = by_hash_.find(hash_[b]);
      if (it == by_hash_.end() || it->second != b) {
        return absl::InternalError(absl::StrCat("cached block ", b, " not in the hash map"));
      }
    }
  }
  if (num_cached != static_cast<int>(by_hash_.size())) {
    return absl::InternalError(absl::StrCat("hash map has ", by_hash_.size(), " entries for ",
                                            num_cached, " cached blocks"));
  }
  return absl::OkStatus();
}

}  // namespace phi3
