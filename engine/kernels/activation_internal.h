// Internal to engine/kernels: scalar form of llama.cpp's x86 vector exp
// (ggml_v_expf, an ARM optimized-routines style expf: n = round(x*log2e),
// b = x - n*ln2 in two parts, a degree-5 polynomial j(b), result j * 2^n;
// max error ~1.5 ulp), shared by the scalar table and the SIMD fallbacks.
#ifndef PHI3_ENGINE_KERNELS_ACTIVATION_INTERNAL_H_
#define PHI3_ENGINE_KERNELS_ACTIVATION_INTERNAL_H_

#include <cmath>
#include <cstdint>

namespace phi3::internal {

// llama.cpp's x86 build runs its vector exp over chunks of 16 floats (AVX-512)
// and libm expf over the last n % 16 elements of a row.
inline constexpr int64_t kGgmlActChunk = 16;

struct GgmlExpConstants {
  static constexpr float kShifter = 0x1.8p23f;
  static constexpr float kLog2e = 0x1.715476p+0f;
  static constexpr float kLn2Hi = 0x1.62e4p-1f;
  static constexpr float kLn2Lo = 0x1.7f7d1cp-20f;
  static constexpr float kP0 = 0x1.ffffecp-1f;
  static constexpr float kP1 = 0x1.fffdb6p-2f;
  static constexpr float kP2 = 0x1.555e66p-3f;
  static constexpr float kP3 = 0x1.573e2ep-5f;
  static constexpr float kP4 = 0x1.0e4020p-7f;
};

// Every operation rounds once (fma where the vector code fuses), so this
// equals one lane of the vector code bit for bit.
inline float GgmlExpF(float x) {
  using E = GgmlExpConstants;
  const float n = std::fma(x, E::kLog2e, E::kShifter) - E::kShifter;
  const float b = std::fma(-n, E::kLn2Lo, std::fma(-n, E::kLn2Hi, x));
  if (std::fabs(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(E::kP4, b, E::kP3), u, std::fma(E::kP2, b, E::kP1)),
                           u, std::fma(E::kP0, b, 1.0f));
  return std::ldexp(j, static_cast<int>(n));
}

// silu(x) = x / (1 + exp(-x)) with the vector exp (full chunks) or libm expf
// (a row's tail).
inline float GgmlSiluVec(float x) { return x / (1.0f + GgmlExpF(0.0f - x)); }
inline float GgmlSiluTail(float x) { return x / (1.0f + std::exp(-x)); }

}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_ACTIVATION_INTERNAL_H_
