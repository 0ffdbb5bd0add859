// Load-time repacking of Q4_0 / Q4_1 / Q8_0 / Q4_K / Q5_K / Q6_K weight
// matrices into the interleaved 16-row layout MatMul reads fastest (one
// vector instruction serves 16 rows; layout in packed_internal.h). Same
// numbers as the row-major path, bit for bit, on every SIMD level; only the
// memory order changes.
//
// Usage (Phi3Model does this at Open for every matrix it multiplies that
// CanPackWeights accepts): if (CanPackWeights(w)) { p = PackWeights(w, pool);
// use p.matrix() instead of w }. The packed copy is about as large as the
// original (Q4_0, Q4_1 and Q8_0 exactly; Q4_K +2.8%, Q5_K +2.3% for unpacked
// scales; Q6_K +1% padding) and owns its memory; the caller may drop the
// original's pages afterwards (the model does so with madvise on its file
// mapping, so RSS does not double).
//
// F16 / BF16 stay row-major: their dots are bound by float multiply-adds in
// any layout (fmas, or vdpbf16ps, in llama.cpp's lane orders), and a packed
// version (16 rows per vcvtph2ps, up to 6 tokens per weight vector) measured
// no clear gain for decode (1 or 16 streams) and 8-12% slower prompts (AMD
// Zen 5, 2 threads): see the history of this file. PackWeights still copies
// them, unchanged and row-major, onto 2 MiB pages as it does the packed
// types: decode streams every weight once per token, and from the file
// mapping's 4 KiB pages the same loads read slower (F16 decode of a 188 MiB
// matrix, 1 thread, AMD Zen 5: 85% of the read ceiling vs 96%).
//
// Thread safety: PackedWeights is immutable after PackWeights; any number of
// MatMul calls may read it concurrently.
#ifndef PHI3_ENGINE_KERNELS_PACKED_WEIGHTS_H_
#define PHI3_ENGINE_KERNELS_PACKED_WEIGHTS_H_

#include <cstdint>
#include <memory>

#include "engine/kernels/matmul.h"
#include "engine/kernels/thread_pool.h"

namespace phi3 {

// True if w is row-major Q4_0, Q4_1, Q8_0, Q4_K, Q5_K or Q6_K with a whole
// number of blocks per row (Q5_K/Q6_K: and the active SIMD level has packed
// kernels for them, which every level has today), or row-major F16 / BF16
// (copied with the layout unchanged: see above).
bool CanPackWeights(const WeightMatrix& w);

// False when the environment sets PHI3_PACK_WEIGHTS=0 (A/B runs); callers
// that pack at load should skip packing then.
bool WeightPackingEnabled();

class PackedWeights {
 public:
  PackedWeights() = default;
  PackedWeights(PackedWeights&&) = default;
  PackedWeights& operator=(PackedWeights&&) = default;

  // The packed matrix (layout kPacked16; F16 / BF16: kRowMajor, a copy);
  // data owned by this object.
  const WeightMatrix& matrix() const { return matrix_; }
  int64_t bytes() const { return bytes_; }

 private:
  friend PackedWeights PackWeights(const WeightMatrix& w, ThreadPool& pool);
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> buffer_;  // 64-byte aligned
  int64_t bytes_ = 0;
  WeightMatrix matrix_;
};

// Copies w into the packed layout, in parallel on `pool` (~1-2 GB/s per
// thread). Returns an empty PackedWeights (matrix().data == nullptr) if the
// memory cannot be allocated. REQUIRES: CanPackWeights(w).
PackedWeights PackWeights(const WeightMatrix& w, ThreadPool& pool);

}  // namespace phi3

#endif  // PHI3_ENGINE_KERNELS_PACKED_WEIGHTS_H_
