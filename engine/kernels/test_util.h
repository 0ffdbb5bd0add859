// Shared helpers for the kernels tests.
#ifndef PHI3_ENGINE_KERNELS_TEST_UTIL_H_
#define PHI3_ENGINE_KERNELS_TEST_UTIL_H_

#include <cstdint>
#include <random>
#include <vector>

#include "engine/common/tensor_type.h"

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

}  // namespace phi3::testing

#endif  // PHI3_ENGINE_KERNELS_TEST_UTIL_H_
