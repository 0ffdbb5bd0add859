#include "engine/kernels/packed_weights.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/common/tensor_type.h"
#include "engine/kernels/cpu_features.h"
#include "engine/kernels/packed_internal.h"
#include "engine/kernels/quantize.h"

namespace phi3 {
namespace {

using internal::kPackRows;
using internal::PackedActQ4_0;
using internal::PackedActQ4_0Tile;
using internal::PackedActQ4_1;
using internal::PackedActQ4K;
using internal::PackedActQ8_0;
using internal::PackedQ4_0Block;
using internal::PackedQ4_1Block;
using internal::PackedQ4KBlock;
using internal::PackedQ5KBlock;
using internal::PackedQ6KBlock;
using internal::PackedQ8_0Block;

int64_t PackedBlockBytes(TensorType type) {
  switch (type) {
    case TensorType::kQ4_0:
      return sizeof(PackedQ4_0Block);
    case TensorType::kQ4_1:
      return sizeof(PackedQ4_1Block);
    case TensorType::kQ8_0:
      return sizeof(PackedQ8_0Block);
    case TensorType::kQ5_K:
      return sizeof(PackedQ5KBlock);
    case TensorType::kQ6_K:
      return sizeof(PackedQ6KBlock);
    default:
      return sizeof(PackedQ4KBlock);
  }
}

// Side data per activation block (0: the kernel reads the Q8_K blocks only).
int64_t AuxBytes(TensorType type) {
  switch (type) {
    case TensorType::kQ4_0:
      return sizeof(PackedActQ4_0);
    case TensorType::kQ4_1:
      return sizeof(PackedActQ4_1);
    case TensorType::kQ8_0:
      return sizeof(PackedActQ8_0);
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
      return sizeof(PackedActQ4K);
    default:
      return 0;
  }
}

// From the one table of type facts. REQUIRES: a packable (hence supported) type.
int64_t BlockElements(TensorType type) { return GetTensorTypeTraits(type)->block_elements; }

// Packs one group of nr <= 16 rows (row_bytes apart at src) of nb file
// blocks each into nb PackedBlocks at dst: copy(row r's block b, r, the
// packed block b) writes row r's lane of every field. The whole group is
// zeroed first when some of it is not written (a tail group's padding rows;
// kZeroPadding: pad bytes inside the packed block).
template <typename FileBlock, typename PackedBlock, bool kZeroPadding = false, typename Copy>
void PackGroup(const uint8_t* src, int64_t row_bytes, int nr, int64_t nb, uint8_t* dst,
               Copy copy) {
  PackedBlock* out = reinterpret_cast<PackedBlock*>(dst);
  if (kZeroPadding || nr < kPackRows) std::memset(dst, 0, nb * sizeof(PackedBlock));
  for (int r = 0; r < nr; ++r) {
    const FileBlock* row = reinterpret_cast<const FileBlock*>(src + r * row_bytes);
    for (int64_t b = 0; b < nb; ++b) copy(row[b], r, out[b]);
  }
}

void PackQ4_0Group(const uint8_t* src, int64_t row_bytes, int nr, int64_t nb, uint8_t* dst) {
  PackGroup<BlockQ4_0, PackedQ4_0Block>(
      src, row_bytes, nr, nb, dst, [](const BlockQ4_0& in, int r, PackedQ4_0Block& out) {
        out.d[r] = in.d;
        for (int c = 0; c < 4; ++c) std::memcpy(out.qs[c][r], in.qs + 4 * c, 4);
      });
}

void PackQ4_1Group(const uint8_t* src, int64_t row_bytes, int nr, int64_t nb, uint8_t* dst) {
  PackGroup<BlockQ4_1, PackedQ4_1Block>(
      src, row_bytes, nr, nb, dst, [](const BlockQ4_1& in, int r, PackedQ4_1Block& out) {
        out.d[r] = in.d;
        out.m[r] = in.m;
        for (int c = 0; c < 4; ++c) std::memcpy(out.qs[c][r], in.qs + 4 * c, 4);
      });
}

void PackQ8_0Group(const uint8_t* src, int64_t row_bytes, int nr, int64_t nb, uint8_t* dst) {
  PackGroup<BlockQ8_0, PackedQ8_0Block>(
      src, row_bytes, nr, nb, dst, [](const BlockQ8_0& in, int r, PackedQ8_0Block& out) {
        out.d[r] = in.d;
        for (int k = 0; k < 8; ++k) std::memcpy(out.qs[k][r], in.qs + 4 * k, 4);
      });
}

// Row r's f16 scales and unpacked 6-bit sub-block scales / mins of one
// Q4_K or Q5_K super-block (the two share this header).
template <typename FileBlock, typename PackedBlock>
void PackScalesAndMins(const FileBlock& in, int r, PackedBlock& out) {
  out.d[r] = in.d;
  out.dmin[r] = in.dmin;
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    GetScaleMinK4(j, in.scales, &sc, &m);
    out.scales[j][r] = sc;
    out.mins[j / 2][r][j % 2] = m;
  }
}

void PackQ4KGroup(const uint8_t* src, int64_t row_bytes, int nr, int64_t nb, uint8_t* dst) {
  PackGroup<BlockQ4_K, PackedQ4KBlock>(
      src, row_bytes, nr, nb, dst, [](const BlockQ4_K& in, int r, PackedQ4KBlock& out) {
        PackScalesAndMins(in, r, out);
        for (int k = 0; k < 32; ++k) std::memcpy(out.qs[k][r], in.qs + 4 * k, 4);
      });
}

void PackQ5KGroup(const uint8_t* src, int64_t row_bytes, int nr, int64_t nb, uint8_t* dst) {
  PackGroup<BlockQ5_K, PackedQ5KBlock>(
      src, row_bytes, nr, nb, dst, [](const BlockQ5_K& in, int r, PackedQ5KBlock& out) {
        PackScalesAndMins(in, r, out);
        for (int k = 0; k < 8; ++k) {
          for (int c = 0; c < 4; ++c) {
            std::memcpy(out.lane[k].qs[c][r], in.qs + 32 * c + 4 * k, 4);
          }
          std::memcpy(out.lane[k].qh[r], in.qh + 4 * k, 4);
        }
      });
}

void PackQ6KGroup(const uint8_t* src, int64_t row_bytes, int nr, int64_t nb, uint8_t* dst) {
  PackGroup<BlockQ6_K, PackedQ6KBlock, /*kZeroPadding=*/true>(
      src, row_bytes, nr, nb, dst, [](const BlockQ6_K& in, int r, PackedQ6KBlock& out) {
        out.d[r] = in.d;
        for (int i = 0; i < 16; ++i) out.scales[i][r] = in.scales[i];
        for (int k = 0; k < 8; ++k) {
          for (int i = 0; i < 4; ++i) {  // i = 2h + half
            std::memcpy(out.lane[k].ql[i][r], in.ql + 32 * i + 4 * k, 4);
          }
          for (int h = 0; h < 2; ++h) {
            std::memcpy(out.lane[k].qh[h][r], in.qh + 32 * h + 4 * k, 4);
          }
        }
      });
}

// -8 * the sum of a's quants (the Q4_0 nibbles' offset, PackedActQ4_0).
int32_t Q4_0NegCorr(const BlockQ8_0& a) {
  int32_t sum = 0;
  for (int i = 0; i < kQK8_0; ++i) sum += a.qs[i];
  return -8 * sum;
}

// aux rows for tokens [0, num_tokens): see PackedActQ4_0 / PackedActQ4_1 /
// PackedActQ8_0 / PackedActQ4K.
void PrepareAux(TensorType type, const uint8_t* xq, int64_t a_stride, int64_t num_tokens,
                int64_t nb, uint8_t* aux, int64_t aux_stride, ThreadPool& pool) {
  const int64_t entry = aux_stride / nb;  // Q8_0 / Q4_1: LaneAuxEntry
  auto body = [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) {
      if (type == TensorType::kQ4_0) {
        const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(xq + t * a_stride);
        PackedActQ4_0* out = reinterpret_cast<PackedActQ4_0*>(aux + t * aux_stride);
        for (int64_t b = 0; b < nb; ++b) {
          out[b].d = F16ToF32(a[b].d);
          out[b].neg_corr = Q4_0NegCorr(a[b]);
        }
      } else if (type == TensorType::kQ4_1) {
        const BlockQ8_1* a = reinterpret_cast<const BlockQ8_1*>(xq + t * a_stride);
        for (int64_t b = 0; b < nb; ++b) {
          auto& out = *reinterpret_cast<PackedActQ4_1*>(aux + t * aux_stride + b * entry);
          out.d = F16ToF32(a[b].d);
          out.s = F16ToF32(a[b].s);
          std::memcpy(out.qs, a[b].qs, sizeof(out.qs));
        }
      } else if (type == TensorType::kQ8_0) {
        const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(xq + t * a_stride);
        for (int64_t b = 0; b < nb; ++b) {
          auto& out = *reinterpret_cast<PackedActQ8_0*>(aux + t * aux_stride + b * entry);
          out.d = F16ToF32(a[b].d);
          for (int i = 0; i < kQK8_0; ++i) {
            out.qs128[i] = static_cast<uint8_t>(a[b].qs[i] + 128);
          }
        }
      } else if (AuxBytes(type) > 0) {
        const BlockQ8_K* a = reinterpret_cast<const BlockQ8_K*>(xq + t * a_stride);
        PackedActQ4K* out = reinterpret_cast<PackedActQ4K*>(aux + t * aux_stride);
        for (int64_t b = 0; b < nb; ++b) {
          out[b].d = a[b].d;
          for (int p = 0; p < 4; ++p) {
            const int32_t lo = a[b].bsums[4 * p] + a[b].bsums[4 * p + 1];
            const int32_t hi = a[b].bsums[4 * p + 2] + a[b].bsums[4 * p + 3];
            out[b].bsum_pairs[p] = static_cast<int32_t>((static_cast<uint32_t>(hi) << 16) |
                                                        (static_cast<uint32_t>(lo) & 0xFFFF));
          }
        }
      }
    }
  };
  if (num_tokens == 1) {
    body(0, 1, 0);
  } else {
    pool.ParallelFor(num_tokens, body);
  }
}

// act ([ceil(num_tokens / kBatchTokens)][nb][kBatchTokens]
// PackedActQ4_0Tile: token t in tile t / kBatchTokens, slot t % kBatchTokens)
// from the Q8_0 rows of num_tokens tokens; the threads take ranges of blocks.
void PrepareQ4_0Tiles(const uint8_t* xq, int64_t a_stride, int64_t num_tokens, int64_t nb,
                      PackedActQ4_0Tile* act, ThreadPool& pool) {
  const int64_t tile_entries = nb * internal::kBatchTokens;
  auto body = [&](int64_t begin, int64_t end, int) {
    for (int64_t b = begin; b < end; ++b) {
      for (int64_t t = 0; t < num_tokens; ++t) {
        const BlockQ8_0& a = reinterpret_cast<const BlockQ8_0*>(xq + t * a_stride)[b];
        PackedActQ4_0Tile& out = act[(t / internal::kBatchTokens) * tile_entries +
                                     b * internal::kBatchTokens + t % internal::kBatchTokens];
        std::memcpy(out.qs, a.qs, sizeof(out.qs));
        out.d = F16ToF32(a.d);
        out.neg_corr = Q4_0NegCorr(a);
      }
    }
  };
  if (num_tokens == 1) {
    body(0, nb, 0);  // a pool dispatch costs more than one token's blocks
  } else {
    pool.ParallelFor(nb, body);
  }
}

// Tokens per token block of a matmul over many tokens: a multiple of `tile`
// (at least one tile, at most 64 tokens) whose activations, token_bytes per
// token, fit ~256 KiB, so they stay in L2 while a thread's groups pass and
// each group is re-read from L1/L2 by every token tile of the block.
int64_t TokenBlock(int64_t token_bytes, int64_t tile) {
  return std::max(tile, std::min<int64_t>(64, (256 * 1024) / token_bytes) / tile * tile);
}

// `bytes` of memory for a PackedWeights buffer, or nullptr. Large matrices go
// on 2 MiB-aligned memory with transparent huge pages requested: decode
// streams them once per token, and 4 KiB pages would cost a TLB walk (and a
// page fault at load) every 4 KiB.
uint8_t* AllocateWeightBuffer(int64_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t align = bytes >= static_cast<int64_t>(kHuge) ? kHuge : 64;
  const size_t alloc = (static_cast<size_t>(bytes) + align - 1) / align * align;
  uint8_t* dst = static_cast<uint8_t*>(std::aligned_alloc(align, alloc));
  if (dst != nullptr && align == kHuge) madvise(dst, alloc, MADV_HUGEPAGE);  // advisory
  return dst;
}

// The calling thread's scratch for a MatMul's activation side data, 64-byte
// aligned: the kernels' entries start at fixed offsets within cache lines
// (PackedActQ4_0Tile: a block's first token slot at the start of one), which
// a vector's 16-byte-aligned data would shift with each reallocation.
uint8_t* AuxScratch(size_t bytes) {
  constexpr size_t kLine = 64;
  thread_local std::vector<uint8_t> scratch;
  if (scratch.size() < bytes + kLine) scratch.resize(bytes + kLine);
  const auto base = reinterpret_cast<uintptr_t>(scratch.data());
  return scratch.data() + ((kLine - base % kLine) % kLine);
}

}  // namespace

bool CanPackWeights(const WeightMatrix& w) {
  if (w.layout != WeightLayout::kRowMajor || w.rows <= 0 || w.data == nullptr) return false;
  switch (w.type) {
    case TensorType::kQ4_0:
    case TensorType::kQ4_1:
    case TensorType::kQ8_0:
    case TensorType::kQ4_K:
      break;
    case TensorType::kQ5_K:
      if (internal::ActivePackedKernels().q5_k == nullptr) return false;
      break;
    case TensorType::kQ6_K:
      if (internal::ActivePackedKernels().q6_k == nullptr) return false;
      break;
    case TensorType::kF16:
    case TensorType::kBF16:
      return w.cols > 0;  // copied as is
    default:
      return false;
  }
  return w.cols > 0 && w.cols % BlockElements(w.type) == 0;
}

bool WeightPackingEnabled() {
  const char* v = std::getenv("PHI3_PACK_WEIGHTS");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

void PackedWeights::Free::operator()(uint8_t* p) const { std::free(p); }

PackedWeights PackWeights(const WeightMatrix& w, ThreadPool& pool) {
  assert(CanPackWeights(w));
  const int64_t row_bytes = RowBytes(w.type, w.cols);
  PackedWeights p;
  if (w.type == TensorType::kF16 || w.type == TensorType::kBF16) {
    // Float weights: the same rows, moved onto huge pages (header comment).
    p.bytes_ = w.rows * row_bytes;
    p.buffer_.reset(AllocateWeightBuffer(p.bytes_));
    uint8_t* dst = p.buffer_.get();
    if (dst == nullptr) return PackedWeights();
    const uint8_t* src = static_cast<const uint8_t*>(w.data);
    pool.ParallelFor(w.rows, [&](int64_t begin, int64_t end, int) {
      std::memcpy(dst + begin * row_bytes, src + begin * row_bytes, (end - begin) * row_bytes);
    });
    p.matrix_ = w;
    p.matrix_.data = dst;
    return p;
  }
  const int64_t nb = w.cols / BlockElements(w.type);
  const int64_t group_bytes = nb * PackedBlockBytes(w.type);
  const int64_t groups = (w.rows + kPackRows - 1) / kPackRows;
  p.bytes_ = groups * group_bytes;
  p.buffer_.reset(AllocateWeightBuffer(p.bytes_));
  uint8_t* dst = p.buffer_.get();
  if (dst == nullptr) return PackedWeights();
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  pool.ParallelFor(groups, [&](int64_t begin, int64_t end, int) {
    for (int64_t g = begin; g < end; ++g) {
      const int nr = static_cast<int>(std::min<int64_t>(kPackRows, w.rows - g * kPackRows));
      const uint8_t* s = src + g * kPackRows * row_bytes;
      uint8_t* d = dst + g * group_bytes;
      switch (w.type) {
        case TensorType::kQ4_0:
          PackQ4_0Group(s, row_bytes, nr, nb, d);
          break;
        case TensorType::kQ4_1:
          PackQ4_1Group(s, row_bytes, nr, nb, d);
          break;
        case TensorType::kQ8_0:
          PackQ8_0Group(s, row_bytes, nr, nb, d);
          break;
        case TensorType::kQ5_K:
          PackQ5KGroup(s, row_bytes, nr, nb, d);
          break;
        case TensorType::kQ6_K:
          PackQ6KGroup(s, row_bytes, nr, nb, d);
          break;
        default:
          PackQ4KGroup(s, row_bytes, nr, nb, d);
          break;
      }
    }
  });
  p.matrix_ = w;
  p.matrix_.data = dst;
  p.matrix_.layout = WeightLayout::kPacked16;
  return p;
}

namespace internal {

namespace {

std::atomic<const PackedKernels*> packed_kernels_for_test{nullptr};

const PackedKernels& Avx512PackedKernelsForCpu() {
  return UseAmxTiles() ? AmxPackedKernels() : Avx512PackedKernels();
}

}  // namespace

const PackedKernels& ActivePackedKernels() {
  if (const PackedKernels* k = packed_kernels_for_test.load(std::memory_order_acquire)) return *k;
  return SelectBySimdLevel(ActiveSimdLevel(), &ScalarPackedKernels, &Avx2PackedKernels,
                           &Avx512PackedKernelsForCpu);
}

void SetPackedKernelsForTest(const PackedKernels* kernels) {
  packed_kernels_for_test.store(kernels, std::memory_order_release);
}

void MatMulPacked(const WeightMatrix& w, const uint8_t* xq, int64_t num_tokens, float* y,
                  int64_t y_stride, ThreadPool& pool, int64_t q4k_gemm_tokens) {
  const PackedKernels& k = ActivePackedKernels();
  const bool q4k = w.type == TensorType::kQ4_K;
  const PackedTileFn tile = w.type == TensorType::kQ4_0   ? k.q4_0
                            : w.type == TensorType::kQ4_1 ? k.q4_1
                            : w.type == TensorType::kQ8_0 ? k.q8_0
                            : w.type == TensorType::kQ5_K ? k.q5_k
                            : w.type == TensorType::kQ6_K ? k.q6_k
                                                          : k.q4_k;
  const int64_t gemm_tokens = q4k ? std::clamp<int64_t>(q4k_gemm_tokens, 0, num_tokens) : 0;
  const int64_t nb = w.cols / BlockElements(w.type);
  const int64_t group_bytes = nb * PackedBlockBytes(w.type);
  const int64_t a_stride = ActivationRowBytes(w.type, w.cols);
  const uint8_t* wdata = static_cast<const uint8_t*>(w.data);
  const int64_t groups = (w.rows + kPackRows - 1) / kPackRows;
  // Q4_0 where the level has q4_0_batch, any number of tokens (decode
  // too): the activations written once per call as 16-token tiles, then one
  // q4_0_batch call per group and tile, in token blocks as below. The tiled
  // form is the faster kernel for batches (Q4_0BatchTile), and for one token
  // too, where each block's activations (quants, scale, -8 * sum) then sit
  // in one cache line of their own instead of spread over the Q8_0 row's
  // 34-byte and PackedActQ4_0's 8-byte entries (AMD EPYC Zen 5, 2 vCPU, one
  // process alternating the forms over copies of a matrix too big for L3,
  // 1 thread: 3072x8192 16.7-19.5 -> 29.6-34.7 GB/s, 8192x3072 19.6-21.4
  // -> 22.9-24.8; the same one-token tiles over 40-byte packed entries,
  // some straddling two lines, 18.6-20.0 at 8192x3072). Long rows gain most,
  // likely because a group of 8192 columns (74 KB of weights) passes through
  // more than L1 holds between two reads of the same activation line, so
  // every line a block's activations touch is another miss to wait on.
  if (w.type == TensorType::kQ4_0 && k.q4_0_batch != nullptr) {
    constexpr int64_t kTile = internal::kBatchTokens;
    const int64_t tile_entries = nb * kTile;
    const int64_t num_tiles = (num_tokens + kTile - 1) / kTile;
    auto* act = reinterpret_cast<PackedActQ4_0Tile*>(
        AuxScratch(static_cast<size_t>(num_tiles * tile_entries) * sizeof(PackedActQ4_0Tile)));
    PrepareQ4_0Tiles(xq, a_stride, num_tokens, nb, act, pool);
    const int64_t token_block = TokenBlock(nb * int64_t{sizeof(PackedActQ4_0Tile)}, kTile);
    auto body = [&](int64_t begin, int64_t end, int) {
      for (int64_t t0 = 0; t0 < num_tokens; t0 += token_block) {
        const int64_t t_end = std::min(num_tokens, t0 + token_block);
        for (int64_t g = begin; g < end; ++g) {
          const int nr = static_cast<int>(std::min<int64_t>(kPackRows, w.rows - g * kPackRows));
          for (int64_t t = t0; t < t_end; t += kTile) {
            k.q4_0_batch(wdata + g * group_bytes, nr,
                         reinterpret_cast<const uint8_t*>(act + t / kTile * tile_entries),
                         static_cast<int>(std::min(kTile, t_end - t)), nb,
                         y + t * y_stride + g * kPackRows, y_stride);
          }
        }
      }
    };
    pool.ParallelForDynamic(groups, MatMulChunk(groups, pool), body);
    return;
  }
  const bool lane_aux_lines = (w.type == TensorType::kQ8_0 || w.type == TensorType::kQ4_1) &&
                              num_tokens <= k.lane_aux_line_tokens;
  const int64_t aux_stride = nb * (lane_aux_lines ? internal::kLaneAuxLineBytes : AuxBytes(w.type));
  uint8_t* aux = AuxScratch(static_cast<size_t>(aux_stride * num_tokens));
  if (aux_stride > 0) PrepareAux(w.type, xq, a_stride, num_tokens, nb, aux, aux_stride, pool);
  const int64_t token_block = TokenBlock(a_stride, 4);
  pool.ParallelForDynamic(groups, MatMulChunk(groups, pool), [&](int64_t begin, int64_t end, int) {
    for (int64_t t0 = 0; t0 < num_tokens; t0 += token_block) {
      const int nt = static_cast<int>(std::min(token_block, num_tokens - t0));
      const int ng = static_cast<int>(std::clamp<int64_t>(gemm_tokens - t0, 0, nt));
      for (int64_t g = begin; g < end; ++g) {
        const int nr = static_cast<int>(std::min<int64_t>(kPackRows, w.rows - g * kPackRows));
        const uint8_t* wg = wdata + g * group_bytes;
        float* yg = y + g * kPackRows;
        if (ng > 0) {
          k.q4_k_pairs(wg, nr, xq + t0 * a_stride, a_stride, aux + t0 * aux_stride, aux_stride, ng,
                       w.cols, yg + t0 * y_stride, y_stride);
        }
        if (ng < nt) {
          const int64_t t1 = t0 + ng;
          tile(wg, nr, xq + t1 * a_stride, a_stride, aux + t1 * aux_stride, aux_stride, nt - ng,
               w.cols, yg + t1 * y_stride, y_stride);
        }
      }
    }
  });
}

}  // namespace internal
}  // namespace phi3
