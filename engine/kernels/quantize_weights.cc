// Weight quantizers used by phi3-mkmodel. They produce valid ggml encodings
// of good quality (least-squares fitted sub-block scales for the K-quants);
// they need not match ggml's quantizers bit for bit, since files carry their
// own encodings and llama.cpp reads whatever is stored.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/kernels/quantize.h"
#include "engine/kernels/quantize_internal.h"

namespace phi3::internal {
namespace {

// Importance weights: larger magnitudes matter more, as in ggml's K-quants.
void ImportanceWeights(const float* x, int n, float* w) {
  float sum_x2 = 0.0f;
  for (int i = 0; i < n; ++i) sum_x2 += x[i] * x[i];
  const float av = std::sqrt(sum_x2 / n);
  for (int i = 0; i < n; ++i) w[i] = av + std::fabs(x[i]);
}

// Fits x ~= scale * L - min_sub with L in [0, nmax], scale >= 0, min_sub >= 0
// (the block minimum is clamped at 0, as ggml stores mins as positive
// offsets). Weighted least squares over a few candidate grids.
void FitAffine(const float* x, int n, int nmax, float* scale, float* min_sub) {
  float xmin = 0.0f, xmax = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < n; ++i) {
    xmin = std::min(xmin, x[i]);
    xmax = std::max(xmax, x[i]);
  }
  if (!(xmax > xmin)) {
    *scale = 0.0f;
    *min_sub = -xmin;
    return;
  }
  float w[kQK_K];
  ImportanceWeights(x, n, w);
  float best_err = std::numeric_limits<float>::infinity();
  float best_s = (xmax - xmin) / nmax, best_b = xmin;
  for (int k = -9; k <= 9; ++k) {
    const float iscale = (nmax + 0.1f * k) / (xmax - xmin);
    double sw = 0, swl = 0, swll = 0, swx = 0, swlx = 0;
    int L[kQK_K];
    for (int i = 0; i < n; ++i) {
      L[i] = std::clamp(NearestInt(iscale * (x[i] - xmin)), 0, nmax);
      sw += w[i];
      swl += w[i] * L[i];
      swll += w[i] * L[i] * L[i];
      swx += w[i] * x[i];
      swlx += w[i] * L[i] * x[i];
    }
    const double det = sw * swll - swl * swl;
    if (det <= 0) continue;
    double s = (sw * swlx - swl * swx) / det;
    double b = (swll * swx - swl * swlx) / det;
    if (b > 0) {
      b = 0;
      s = swlx / swll;
    }
    if (s <= 0) continue;
    float err = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float diff = static_cast<float>(s * L[i] + b) - x[i];
      err += w[i] * diff * diff;
    }
    if (err < best_err) {
      best_err = err;
      best_s = static_cast<float>(s);
      best_b = static_cast<float>(b);
    }
  }
  *scale = best_s;
  *min_sub = -best_b;
}

// Fits x ~= scale * L with L in [-nmax, nmax - 1]; scale may be negative so
// that the extreme value uses the wider negative end, as ggml does.
float FitSymmetric(const float* x, int n, int nmax) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < 1e-30f) return 0.0f;
  float w[kQK_K];
  ImportanceWeights(x, n, w);
  float best_err = std::numeric_limits<float>::infinity(), best_s = -max / nmax;
  for (int k = -9; k <= 9; ++k) {
    const float iscale = -(nmax + 0.1f * k) / max;
    double swlx = 0, swll = 0;
    int L[kQK_K];
    for (int i = 0; i < n; ++i) {
      L[i] = std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
      swlx += w[i] * L[i] * x[i];
      swll += w[i] * L[i] * L[i];
    }
    if (swll <= 0) continue;
    const float s = static_cast<float>(swlx / swll);
    float err = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float diff = s * L[i] - x[i];
      err += w[i] * diff * diff;
    }
    if (err < best_err) {
      best_err = err;
      best_s = s;
    }
  }
  return best_s;
}

// Shared by Q4_K and Q5_K: fits the 8 sub-blocks, packs d/dmin/scales, and
// returns the final quants L[256] (0..nmax) computed with the stored scales.
void QuantizeKAffine(const float* x, int nmax, uint16_t* d_out, uint16_t* dmin_out,
                     uint8_t* packed, uint8_t* L) {
  float scales[8], mins[8];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    FitAffine(x + 32 * j, 32, nmax, &scales[j], &mins[j]);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  std::memset(packed, 0, kKScaleBytes);
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = static_cast<uint8_t>(std::min(63, NearestInt(inv_scale * scales[j])));
    const uint8_t lm = static_cast<uint8_t>(std::min(63, NearestInt(inv_min * mins[j])));
    if (j < 4) {
      packed[j] |= ls;
      packed[j + 4] |= lm;
    } else {
      packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
      packed[j - 4] |= (ls >> 4) << 6;
      packed[j] |= (lm >> 4) << 6;
    }
  }
  *d_out = F32ToF16(max_scale / 63.0f);
  *dmin_out = F32ToF16(max_min / 63.0f);
  const float d = F16ToF32(*d_out), dmin = F16ToF32(*dmin_out);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    GetScaleMinK4(j, packed, &sc, &m);
    const float ds = d * sc, dm = dmin * m;
    for (int l = 0; l < 32; ++l) {
      const int q = ds > 0 ? NearestInt((x[32 * j + l] + dm) / ds) : 0;
      L[32 * j + l] = static_cast<uint8_t>(std::clamp(q, 0, nmax));
    }
  }
}

}  // namespace

void QuantizeRowQ4_0(const float* x, BlockQ4_0* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK4_0; ++i, x += kQK4_0) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK4_0; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int q1 = std::min(15, static_cast<int>(x[j + 16] * id + 8.5f));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void QuantizeRowQ4_1(const float* x, BlockQ4_1* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK4_1; ++i, x += kQK4_1) {
    float min = x[0], max = x[0];
    for (int j = 1; j < kQK4_1; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    y[i].m = F32ToF16(min);
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, static_cast<int>((x[j] - min) * id + 0.5f));
      const int q1 = std::min(15, static_cast<int>((x[j + 16] - min) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void QuantizeRowQ4_K(const float* x, BlockQ4_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    uint8_t L[kQK_K];
    QuantizeKAffine(x, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        y[i].qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
      }
    }
  }
}

void QuantizeRowQ5_K(const float* x, BlockQ5_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    uint8_t L[kQK_K];
    QuantizeKAffine(x, 31, &y[i].d, &y[i].dmin, y[i].scales, L);
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
        y[i].qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        y[i].qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
    }
  }
}

void QuantizeRowQ6_K(const float* x, BlockQ6_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    float scales[16];
    float max_scale = 0.0f, amax = 0.0f;
    for (int j = 0; j < 16; ++j) {
      scales[j] = FitSymmetric(x + 16 * j, 16, 32);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    uint8_t L[kQK_K];
    if (amax == 0.0f) {
      std::memset(y[i].scales, 0, sizeof(y[i].scales));
      y[i].d = 0;
      std::memset(L, 32, sizeof(L));
    } else {
      const float iscale = -128.0f / max_scale;
      y[i].d = F32ToF16(1.0f / iscale);
      const float d = F16ToF32(y[i].d);
      for (int j = 0; j < 16; ++j) {
        y[i].scales[j] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[j])));
        const float ds = d * y[i].scales[j];
        for (int l = 0; l < 16; ++l) {
          const int q = ds != 0.0f ? NearestInt(x[16 * j + l] / ds) : 0;
          L[16 * j + l] = static_cast<uint8_t>(std::clamp(q, -32, 31) + 32);
        }
      }
    }
    for (int h = 0; h < 2; ++h) {
      const uint8_t* Lh = L + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int q1 = Lh[l], q2 = Lh[l + 32], q3 = Lh[l + 64], q4 = Lh[l + 96];
        y[i].ql[64 * h + l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        y[i].ql[64 * h + l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
        y[i].qh[32 * h + l] =
            static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

}  // namespace phi3::internal
