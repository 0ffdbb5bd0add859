// Scalar build of the portable tile kernels.
#include "engine/model/attention_rope.h"
#include "engine/model/attention_tile_generic.h"
#include "engine/kernels/quantize.h"

namespace phi3::internal {
namespace {

void F16ToF32Generic(const uint16_t* x, float* dst, int n) {
  for (int i = 0; i < n; ++i) dst[i] = F16ToF32(x[i]);
}

void RoundF16Generic(float* x, int n) {
  for (int i = 0; i < n; ++i) x[i] = F16ToF32(F32ToF16(x[i]));
}

}  // namespace

const AttentionTileKernels kScalarTileKernels = {"scalar", ScoresPromptGeneric,
                                                 ScoresDecodeGeneric, AccumulatePvGeneric,
                                                 F16ToF32Generic,    RoundF16Generic,
                                                 ScoresDecodeF16Generic,
                                                 AccumulatePvDecodeF16Generic,
                                                 RopeNeoxFused};

}  // namespace phi3::internal
