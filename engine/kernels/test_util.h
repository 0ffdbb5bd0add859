// Shared helpers for the kernels tests.
#ifndef PHI3_ENGINE_KERNELS_TEST_UTIL_H_
#define PHI3_ENGINE_KERNELS_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/common/tensor_type.h"
#include "engine/kernels/quantize.h"

namespace phi3::testing {

inline std::vector<float> RandomVector(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline constexpr TensorType kWeightTypes[] = {
    TensorType::kF32,  TensorType::kF16,  TensorType::kBF16, TensorType::kQ8_0, TensorType::kQ4_0,
    TensorType::kQ4_1, TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K,
};

// llama.cpp's repacked Q4_K rounding (ggml-cpu/arch/x86/repack.cpp) of one
// weight row x one Q8_K activation row, n elements: exact int sums, then
// one fma into a value and a min accumulator per `span` elements (256 in
// its gemv, 64 in its gemm); result acc - accm.
inline float LlamaQ4_KReference(const void* w_row, const void* a_row, int64_t n, int span) {
  const BlockQ4_K* w = static_cast<const BlockQ4_K*>(w_row);
  const BlockQ8_K* a = static_cast<const BlockQ8_K*>(a_row);
  float acc = 0.0f, accm = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    int s = 0, m_sum = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      GetScaleMinK4(j, w[b].scales, &sc, &m);
      int d = 0;
      for (int l = 0; l < 32; ++l) {
        const uint8_t q = w[b].qs[32 * (j / 2) + l];
        d += ((j & 1) ? (q >> 4) : (q & 0xF)) * a[b].qs[32 * j + l];
      }
      s += sc * d;
      m_sum += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
      if ((32 * (j + 1)) % span == 0) {
        acc = std::fma(static_cast<float>(s), F16ToF32(w[b].d) * a[b].d, acc);
        accm = std::fma(static_cast<float>(m_sum), F16ToF32(w[b].dmin) * a[b].d, accm);
        s = m_sum = 0;
      }
    }
  }
  return acc - accm;
}

}  // namespace phi3::testing

#endif  // PHI3_ENGINE_KERNELS_TEST_UTIL_H_
