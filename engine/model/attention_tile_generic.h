// Portable tile kernels (see AttentionTileKernels), written lane by lane in
// the orders attention.h fixes. Included, inside an anonymous namespace, by
// attention_tile.cc (scalar build) and attention_kernels_avx2.cc (compiled
// with AVX2/FMA, where the 16-lane loops vectorise; std::fma keeps every fma
// an fma and the double tail stays a sequential sum).
#ifndef PHI3_ENGINE_MODEL_ATTENTION_TILE_GENERIC_H_
#define PHI3_ENGINE_MODEL_ATTENTION_TILE_GENERIC_H_

#include <cmath>

#include "engine/kernels/quantize.h"
#include "engine/model/attention_kernels_internal.h"

namespace phi3::internal {
namespace {

// [[maybe_unused]]: the AVX2 level has its own (attention_kernels_avx2.cc).
[[maybe_unused]] void ScoresPromptGeneric(const float* q, const float* k_tile, int head_dim,
                                          float* scores) {
  for (int j = 0; j < 16; ++j) {
    const float* k = k_tile + j * head_dim;
    float acc[16] = {};
    for (int c = 0; c < head_dim; c += 16) {
      for (int l = 0; l < 16; ++l) acc[l] = std::fma(k[c + l], q[c + l], acc[l]);
    }
    scores[j] = Tree16(acc);
  }
}

void ScoresDecodeGeneric(const float* q, const float* k_tile, int head_dim, float* scores) {
  const int nf = head_dim & ~63;
  for (int j = 0; j < 16; ++j) {
    const float* k = k_tile + j * head_dim;
    float a[4][16] = {};
    for (int c = 0; c < nf; c += 16) {
      float* r = a[(c / 16) % 4];
      for (int l = 0; l < 16; ++l) r[l] = std::fma(k[c + l], q[c + l], r[l]);
    }
    for (int l = 0; l < 16; ++l) {
      a[0][l] = a[0][l] + a[2][l];
      a[1][l] = a[1][l] + a[3][l];
    }
    for (int l = 0; l < 16; ++l) a[0][l] = a[0][l] + a[1][l];
    double s = Tree16(a[0]);
    for (int i = nf; i < head_dim; ++i) s += static_cast<double>(k[i] * q[i]);
    scores[j] = static_cast<float>(s);
  }
}

void AccumulatePvGeneric(const float* p, const float* v_tile, int n, int head_dim, int classes,
                         float* acc) {
  for (int j = 0; j < n; ++j) {
    if (p[j] == 0.0f) continue;
    const float pj = p[j];
    const float* v = v_tile + j * head_dim;
    float* a = acc + static_cast<int64_t>(j % classes) * head_dim;
    for (int d = 0; d < head_dim; ++d) a[d] = std::fma(v[d], pj, a[d]);
  }
}

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_MODEL_ATTENTION_TILE_GENERIC_H_
