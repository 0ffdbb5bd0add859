// Internal to engine/kernels: the packed (16-row interleaved) Q4_0 / Q4_1 /
// Q8_0 / Q4_K / Q5_K / Q6_K layouts and the per-SIMD-level kernels that read them.
//
// A packed matrix is ceil(rows / 16) groups of 16 rows (the last one padded
// with zero rows); group g holds rows 16g .. 16g+15 and is `nb` group-blocks
// long (nb = cols / block elements), one after the other. One 64-byte chunk
// gives each of the 16 rows 4 bytes of the same block, so a single
// vpdpbusd (or two 256-bit maddubs halves on AVX2) with a broadcast 4-byte
// activation chunk accumulates one int32 per row lane: no horizontal sums.
//
// Contract every level keeps (matmul_test pins it): a packed tile writes,
// for each (row, token), exactly the float the same level's row-major
// tile/dot writes for that pair (same fma order per block; integer sums
// are exact whatever their order).
#ifndef PHI3_ENGINE_KERNELS_PACKED_INTERNAL_H_
#define PHI3_ENGINE_KERNELS_PACKED_INTERNAL_H_

#include <cstdint>

#include "engine/common/tensor_type.h"
#include "engine/kernels/matmul.h"
#include "engine/kernels/thread_pool.h"

namespace phi3::internal {

inline constexpr int kPackRows = 16;

// Q4_0 group-block (32 elements x 16 rows), 288 bytes = 16 file blocks.
// qs[c][r] = bytes 4c .. 4c+3 of row r's block: low nibbles are elements
// 4c .. 4c+3, high nibbles 16+4c .. 16+4c+3 (unsigned; the -8 offset is
// applied as -8 * sum(activations)).
struct PackedQ4_0Block {
  uint16_t d[kPackRows];  // f16 scales as in the file (converted 16 at a time)
  uint8_t qs[4][kPackRows][4];
};
static_assert(sizeof(PackedQ4_0Block) == 288);

// Q4_1 group-block (32 elements x 16 rows), 320 bytes = 16 file blocks
// (five cache lines: the scales and mins, then the four chunks). qs as
// PackedQ4_0Block (unsigned nibbles, no offset). The rounding is the
// row-major kernels', the same on every level (ggml_vec_dot_q4_1_q8_1,
// x86): per row, 8 lanes, lane k = the exact sum of elements 4k .. 4k+3 of
// each block (chunk k % 4, low nibbles for k < 4, high for k >= 4), acc_k =
// fma(d_w * d_a, float(lane_k), acc_k); summs = summs + m_w * s_a per
// block; result ((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5) + (acc3 +
// acc7)) + summs. A product of two f16 values is exact in f32, so d_w * d_a
// and m_w * s_a round the same fused or not.
struct PackedQ4_1Block {
  uint16_t d[kPackRows];  // f16
  uint16_t m[kPackRows];  // f16
  uint8_t qs[4][kPackRows][4];
};
static_assert(sizeof(PackedQ4_1Block) == 320);

// Q8_0 group-block (32 elements x 16 rows), 544 bytes = 16 file blocks.
// qs[k][r] = bytes 4k .. 4k+3 of row r's block (signed, as in the file).
// The rounding is the row-major kernels' (ggml_vec_dot_q8_0_q8_0): per row,
// 8 lanes, lane k = the exact sum over chunk k of each block, acc_k =
// fma(d_w * d_a, float(lane_k), acc_k), result ((acc0 + acc4) + (acc2 +
// acc6)) + ((acc1 + acc5) + (acc3 + acc7)). Here a vector lane is a row,
// so a token's 8 lane sums are 8 vectors.
struct PackedQ8_0Block {
  uint16_t d[kPackRows];
  int8_t qs[8][kPackRows][4];
};
static_assert(sizeof(PackedQ8_0Block) == 544);

// Q4_K group-superblock (256 elements x 16 rows), 2368 bytes (file: 2304).
// qs[k][r] = bytes 4k .. 4k+3 of row r's qs: with c = k / 8 and i =
// 4 * (k % 8), low nibbles are elements 64c + i .. +3 (sub-block 2c), high
// nibbles 64c + 32 + i .. +3 (sub-block 2c + 1). The 6-bit scales/mins are
// unpacked: scales[j][r] = sc_j of row r; mins[p][r] = {m_2p, m_2p+1}.
struct PackedQ4KBlock {
  uint16_t d[kPackRows];
  uint16_t dmin[kPackRows];
  uint8_t scales[8][kPackRows];
  uint8_t mins[4][kPackRows][2];
  uint8_t qs[32][kPackRows][4];
};
static_assert(sizeof(PackedQ4KBlock) == 2368);

// Q5_K and Q6_K keep the row-major kernels' rounding, which is per 8-lane
// accumulator (ggml_vec_dot_q5_K_q8_K / _q6_K): lane k of a row sums, over
// the 32-element sub-blocks j, sc * (elements 32j + 4k .. +3 of q x a). So
// the packed kernels hold 8 lane sums per row and token; "chunk (j, k)" below
// is those 4 elements of sub-block j for the 16 rows (64 bytes once unpacked).

// Q5_K group-superblock, 2880 bytes (file: 16 x 176 = 2816). d, dmin,
// scales and mins as PackedQ4KBlock. lane[k] holds everything chunks
// (j, k) need, so a kernel that goes k by k reads each super-block front to
// back: lane[k].qs[c][r] = bytes 32c + 4k .. +3 of row r's qs (low nibbles:
// sub-block 2c, high: 2c + 1), lane[k].qh[r] = bytes 4k .. 4k+3 of its qh
// (bit j: the fifth bit of sub-block j).
struct PackedQ5KBlock {
  uint16_t d[kPackRows];
  uint16_t dmin[kPackRows];
  uint8_t scales[8][kPackRows];
  uint8_t mins[4][kPackRows][2];
  struct Lane {
    uint8_t qs[4][kPackRows][4];
    uint8_t qh[kPackRows][4];
  } lane[8];
};
static_assert(sizeof(PackedQ5KBlock) == 2880);

// Q6_K group-superblock, 3392 bytes (file: 16 x 210 = 3360; the padding
// keeps every 64-byte chunk in one cache line). scales[i][r] = scale of row
// r's 16-element sub-block i. Chunk (c, k), c = 4h + s, from lane[k]:
// lane[k].ql[2h + s % 2][r] = bytes 64h + 32(s % 2) + 4k .. +3 of row r's
// ql (nibble s / 2), lane[k].qh[h][r] = bytes 32h + 4k .. +3 of its qh
// (bits 2s, 2s + 1); scale 2c + k / 4.
struct PackedQ6KBlock {
  uint16_t d[kPackRows];
  uint8_t pad[32];
  int8_t scales[16][kPackRows];
  struct Lane {
    uint8_t ql[4][kPackRows][4];
    uint8_t qh[2][kPackRows][4];
  } lane[8];
};
static_assert(sizeof(PackedQ6KBlock) == 3392);

// Per-token, per-block activation side data, computed once per MatMul.
struct PackedActQ4_0 {
  float d;       // the Q8_0 block's scale as f32
  int32_t neg_corr;  // -8 * sum of the block's 32 quants (the nibbles' -8 offset)
};
inline constexpr int kBatchTokens = 16;  // token slots per block of PackedActQ4_0Tile

// Q4_0 activations of a tile of up to kBatchTokens tokens, one block of all
// of them together: [nb][kBatchTokens] (token slots at and past the tile's
// token count unused), so a kernel reaches every token of a block from one
// pointer. A batch of more tokens is [tiles][nb][kBatchTokens].
struct PackedActQ4_0Tile {
  int8_t qs[32];     // the Q8_0 block's quants
  float d;           // its scale as f32
  int32_t neg_corr;  // as PackedActQ4_0
};
static_assert(sizeof(PackedActQ4_0Tile) == 40);
// Q4_1: the Q8_1 block's scale and f16 sum term s, as f32, and its quants
// (the kernels read all of a block's activations from here, not the Q8_1
// row).
struct PackedActQ4_1 {
  float d;
  float s;
  int8_t qs[32];
};
// Q8_0: the block's quants + 128 as unsigned bytes (vpdpbusd's unsigned
// operand; the weights stay signed and the kernel subtracts 128 * sum(w)).
struct PackedActQ8_0 {
  float d;
  uint8_t qs128[32];
};

// Where a Q8_0 / Q4_1 batch's side data sits: token t's entry of block b at
// aux + t * aux_stride + b * (aux_stride / nb). MatMulPacked packs the
// entries (sizeof apart), or for a batch of at most the level's
// PackedKernels::lane_aux_line_tokens tokens spreads them kLaneAuxLineBytes
// apart: one entry per cache line, every other line unused. Measured on
// Zen 5 (AVX-512, one process alternating the layouts over copies of a
// matrix too big for L3, one token, medians of 79 calls; 1 / 2 threads,
// GB/s): Q8_0 16384x3072 packed 23.9 / 50.3, 64 apart 22.2 / 46.1, 128
// apart 25.9 / 55.0 (9216x3072: 25.1 / 40.0, 23.5 / 35.3, 27.2 / 44.7);
// Q4_1 (before: d and s packed, quants read from the Q8_1 row) 16384x3072
// 35.2 / 55.3, 64 apart 34.2 / 55.0, 128 apart 36.7 / 59.7 (9216x3072:
// 30.6 / 50.0, 29.2 / 47.4, 32.8 / 54.9). Entries on adjacent lines read
// slower than packed ones that straddle lines; why is not known (no PMU
// counters there; likely the L1 stream prefetcher). 8 tokens or more: 128
// apart measured 4-6% slower (Q8_0, 2 threads). The AVX2 kernels (Q4_1's
// then reading its quants from the Q8_1 row) gained nothing: they keep 0.
inline constexpr int64_t kLaneAuxLineBytes = 128;
// Block b's entry in the token row at aux_row, entries entry_bytes apart.
template <typename Entry>
const Entry& LaneAuxEntry(const uint8_t* aux_row, int64_t entry_bytes, int64_t b) {
  return *reinterpret_cast<const Entry*>(aux_row + b * entry_bytes);
}

// Also Q5_K's (its mins pair with the same bsums). Q6_K reads the Q8_K
// blocks directly (bsums as i16 pairs).
struct PackedActQ4K {
  float d;                // the Q8_K block's scale
  int32_t bsum_pairs[4];  // pair p: i16 {bsum_2p, bsum_2p+1}, bsum_j = sum of sub-block j
};

// y[t * y_stride + r] for r in [0, nr), t in [0, nt) from one group of 16
// rows. a: the encoded activations (Q8_0 / Q8_K rows, a_stride apart);
// aux: PackedAct* rows of n / block entries, aux_stride bytes apart (Q8_0
// and Q4_1 entries aux_stride / nb bytes apart: LaneAuxEntry).
using PackedTileFn = void (*)(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride,
                              const uint8_t* aux, int64_t aux_stride, int nt, int64_t n, float* y,
                              int64_t y_stride);

// y[t * y_stride + r] for r in [0, nr), t in [0, nt), nt in [1, 16], from
// one group of 16 rows and act ([nb][kBatchTokens] PackedActQ4_0Tile);
// each (row, token) rounded exactly as PackedTileFn rounds it.
using PackedTokenTileFn = void (*)(const uint8_t* group, int nr, const uint8_t* act, int nt,
                                   int64_t nb, float* y, int64_t y_stride);

struct PackedKernels {
  // Q4_0: a level sets q4_0, q4_0_batch or both. MatMulPacked calls
  // q4_0_batch for every batch (decode's one token included) where it is
  // set, one 16-token tile (or the last, shorter one) per call, from
  // PackedActQ4_0Tile activations; q4_0 otherwise (the AMX table: there
  // q4_0 takes every batch and falls back to the AVX-512 q4_0 for short
  // tiles).
  PackedTileFn q4_0 = nullptr;
  PackedTokenTileFn q4_0_batch = nullptr;
  PackedTileFn q4_1 = nullptr;
  PackedTileFn q8_0 = nullptr;
  PackedTileFn q4_k = nullptr;        // gemv rounding (per super-block)
  PackedTileFn q4_k_pairs = nullptr;  // gemm rounding (per 64 elements)
  PackedTileFn q5_k = nullptr;        // one rounding for any batch (matmul.h)
  PackedTileFn q6_k = nullptr;
  // Q8_0 / Q4_1 batches of up to this many tokens get their side data one
  // entry per kLaneAuxLineBytes (see there); 0: always packed.
  int lane_aux_line_tokens = 0;
};

const PackedKernels& ScalarPackedKernels();
const PackedKernels& Avx2PackedKernels();    // REQUIRES: AVX2+FMA+F16C
const PackedKernels& Avx512PackedKernels();  // REQUIRES: the kAvx512 set
// Avx512PackedKernels() with q4_0, q4_k and q4_k_pairs on AMX tiles (same
// results; packed_amx.cc). REQUIRES: UseAmxTiles().
const PackedKernels& AmxPackedKernels();
// Whether the AMX unit computes, for random operands in both tile slots and
// a short tile, exactly what the C++ products do. REQUIRES: CpuHasAmxInt8().
bool AmxTilesSelfCheck();
// The AMX kernel of `type` (kQ4_0, or kQ4_K in its decode rounding)
// `iterations` times over one group of 16 rows x 16 tokens with every
// operand in L1: the ceiling of its exact instruction mix, tile loads and
// stores included (phi3-bench). Returns the multiply-adds done.
// REQUIRES: UseAmxTiles().
int64_t AmxKernelInL1(TensorType type, int64_t iterations);
// The same kernels with the tile products computed in C++ (slow): tests pin
// the AMX kernels' layout and epilogue with it on CPUs without AMX.
// REQUIRES: the kAvx512 set.
const PackedKernels& EmulatedAmxPackedKernels();
// Of ActiveSimdLevel() (kAvx512: AmxPackedKernels() if UseAmxTiles()),
// unless a test set another table with SetPackedKernelsForTest.
const PackedKernels& ActivePackedKernels();
// Tests: MatMulPacked uses `kernels` instead of the active level's table
// until called again with nullptr. Must not race with running matmuls.
void SetPackedKernelsForTest(const PackedKernels* kernels);
// The Q5_K / Q6_K members of the AVX2 / AVX-512 tables (packed_k56_*.cc).
PackedTileFn Avx2PackedQ5K();
PackedTileFn Avx2PackedQ6K();
// l1_prefetch: prefetch ahead into L1 instead of L2 (Avx512PackedKernels()
// sets it on CpuIsAmdFamily1AhOrLater(); same results either way).
PackedTileFn Avx512PackedQ5K(bool l1_prefetch);
PackedTileFn Avx512PackedQ6K(bool l1_prefetch);

// Row tiles (or packed groups) per chunk a MatMul hands out to its threads:
// ~8 chunks per thread, so a descheduled thread holds back at most ~1/8 of
// its share (ThreadPool::ParallelForDynamic) while each chunk stays long
// enough (hundreds of KiB of weights) that claiming it costs nothing.
inline int64_t MatMulChunk(int64_t items, const ThreadPool& pool) {
  const int64_t chunk = items / (8 * static_cast<int64_t>(pool.num_threads()));
  return chunk < 1 ? 1 : chunk;
}

// MatMulQuantized for w.layout == kPacked16 (matmul.cc dispatches here).
void MatMulPacked(const WeightMatrix& w, const uint8_t* xq, int64_t num_tokens, float* y,
                  int64_t y_stride, ThreadPool& pool, int64_t q4k_gemm_tokens);

// Writes the nr <= 16 first lanes of each of nt rows of out ([nt][16]).
inline void StorePackedRows(const float* out, int nt, int nr, float* y, int64_t y_stride) {
  for (int t = 0; t < nt; ++t) {
    for (int r = 0; r < nr; ++r) y[t * y_stride + r] = out[t * kPackRows + r];
  }
}

}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_PACKED_INTERNAL_H_
