#include "engine/model/ops.h"

#include <cmath>

#include "engine/kernels/dot.h"
#include "engine/kernels/quantize.h"

namespace phi3 {

void RmsNormRow(const float* x, const float* w, int n, float eps, float* y) {
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / n);
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

void RopeTable(const RopeParams& p, int32_t pos, float* cs) {
  const float theta_scale = std::pow(p.freq_base, -2.0f / p.rope_dims);
  float theta = static_cast<float>(pos);
  for (int i = 0; i < p.rope_dims / 2; ++i) {
    const float ff = p.factors.empty() ? 1.0f : p.factors[i];
    const float t = p.freq_scale * (theta / ff);
    cs[2 * i] = std::cos(t) * p.mscale;
    cs[2 * i + 1] = std::sin(t) * p.mscale;
    theta *= theta_scale;
  }
}

void RopeNeoxHead(const float* cs, int rope_dims, float* x) {
  const int half = rope_dims / 2;
  for (int i = 0; i < half; ++i) {
    const float c = cs[2 * i];
    const float s = cs[2 * i + 1];
    const float x0 = x[i];
    const float x1 = x[i + half];
    x[i] = x0 * c - x1 * s;
    x[i + half] = x0 * s + x1 * c;
  }
}

void SwiGluRow(const float* gate, const float* up, int n, float* y) {
  SiluMulRow(gate, up, n, y);
}

void RoundToF16(float* x, int n) {
  for (int i = 0; i < n; ++i) x[i] = F16ToF32(F32ToF16(x[i]));
}

void F32ToF16Row(const float* x, uint16_t* y, int n) {
  for (int i = 0; i < n; ++i) y[i] = F32ToF16(x[i]);
}

}  // namespace phi3
