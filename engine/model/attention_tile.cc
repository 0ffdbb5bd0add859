// Scalar build of the portable tile kernels.
#include <cmath>

#include "engine/kernels/quantize.h"
#include "engine/model/attention_rope.h"
#include "engine/model/attention_tile_generic.h"

namespace phi3::internal {
namespace {

void F16ToF32Generic(const uint16_t* x, float* dst, int n) {
  for (int i = 0; i < n; ++i) dst[i] = F16ToF32(x[i]);
}

void RoundF16Generic(float* x, int n) {
  for (int i = 0; i < n; ++i) x[i] = F16ToF32(F32ToF16(x[i]));
}

// Decode kernels on an f16 pool, position by position in the orders of
// attention.h (the SIMD files compute the same with transposed reductions).
void ScoresDecodeF16Generic(const float* q, const uint8_t* base, const int64_t* offsets, int n,
                            int head_dim, float* scores, const uint8_t* const*, int) {
  float tile[16 * 128];
  for (int j0 = 0; j0 < n; j0 += 16) {
    for (int j = 0; j < 16; ++j) {
      const uint16_t* k = reinterpret_cast<const uint16_t*>(base + offsets[j0 + j]);
      for (int d = 0; d < head_dim; ++d) tile[j * head_dim + d] = F16ToF32(k[d]);
    }
    ScoresDecodeGeneric(q, tile, head_dim, scores + j0);
  }
}

void PvDecodeF16Generic(const float* p, const uint8_t* base, const int64_t* offsets, int n,
                        int head_dim, float* out) {
  float acc[64 * 128] = {};  // [class][head_dim]
  for (int j = 0; j < n; ++j) {
    if (p[j] == 0.0f) continue;
    const uint16_t* v = reinterpret_cast<const uint16_t*>(base + offsets[j]);
    float* a = acc + (j % 64) * head_dim;
    for (int d = 0; d < head_dim; ++d) a[d] = std::fma(F16ToF32(v[d]), p[j], a[d]);
  }
  for (int d = 0; d < head_dim; ++d) {
    float x[16];
    for (int l = 0; l < 16; ++l) {
      const float* c = acc + l * head_dim + d;
      x[l] = (c[0] + c[32 * head_dim]) + (c[16 * head_dim] + c[48 * head_dim]);
    }
    out[d] = Tree16(x);
  }
}

}  // namespace

const AttentionTileKernels& ScalarTileKernels() {
  static constexpr AttentionTileKernels kKernels = {
      "scalar",        ScoresPromptGeneric, ScoresDecodeGeneric,    AccumulatePvGeneric,
      F16ToF32Generic, RoundF16Generic,     ScoresDecodeF16Generic, PvDecodeF16Generic,
      RopeNeoxFused};
  return kKernels;
}

}  // namespace phi3::internal
