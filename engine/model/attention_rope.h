// NEOX rotation as llama.cpp's CPU build computes it (ggml rotate_pairs,
// compiled with FMA contraction): for i < rope_dims / 2, with (c, s) =
// cs[2i], cs[2i + 1], x0 = x[i], x1 = x[i + rope_dims / 2]:
//   x[i] = fma(x0, c, -(x1 * s)),  x[i + rope_dims / 2] = fma(x0, s, x1 * c).
// (The unfused x0 * c - x1 * s differs from llama.cpp in ~1 of 4 values,
// checked against the oracle's libggml-cpu-zen4.so.) Included, inside an
// anonymous namespace, by each attention kernel translation unit.
#ifndef PHI3_ENGINE_MODEL_ATTENTION_ROPE_H_
#define PHI3_ENGINE_MODEL_ATTENTION_ROPE_H_

#include <cmath>

namespace phi3::internal {
namespace {

void RopeNeoxFused(const float* cs, int rope_dims, float* x) {
  const int half = rope_dims / 2;
  for (int i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const float x0 = x[i], x1 = x[i + half];
    x[i] = std::fma(x0, c, -(x1 * s));
    x[i + half] = std::fma(x0, s, x1 * c);
  }
}

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_MODEL_ATTENTION_ROPE_H_
