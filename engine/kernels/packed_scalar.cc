// Scalar kernels for the packed layouts: the same rounding as the scalar
// row-major dots of dot_scalar.cc (Q4_0: acc = fma(S, d_w * d_a, acc) per
// block; Q4_1 and Q8_0: 8 lanes, see PackedQ4_1Block / PackedQ8_0Block;
// Q4_K: fma per super-block or per 64 elements, see DotQ4_KLane).
#include <cmath>
#include <cstring>

#include "engine/kernels/packed_internal.h"
#include "engine/kernels/quantize.h"

namespace phi3::internal {
namespace {

void Q4_0Scalar(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride,
                const uint8_t* aux, int64_t aux_stride, int nt, int64_t n, float* y,
                int64_t y_stride) {
  const PackedQ4_0Block* w = reinterpret_cast<const PackedQ4_0Block*>(group);
  const int64_t nb = n / kQK4_0;
  for (int t = 0; t < nt; ++t) {
    const BlockQ8_0* at = reinterpret_cast<const BlockQ8_0*>(a + t * a_stride);
    const PackedActQ4_0* xt = reinterpret_cast<const PackedActQ4_0*>(aux + t * aux_stride);
    for (int r = 0; r < nr; ++r) {
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t s = 0;
        for (int c = 0; c < 4; ++c) {
          for (int i = 0; i < 4; ++i) {
            const uint8_t q = w[b].qs[c][r][i];
            s += (q & 0xF) * at[b].qs[4 * c + i] + (q >> 4) * at[b].qs[16 + 4 * c + i];
          }
        }
        s += xt[b].neg_corr;
        acc = std::fma(static_cast<float>(s), F16ToF32(w[b].d[r]) * xt[b].d, acc);
      }
      y[t * y_stride + r] = acc;
    }
  }
}

// ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)): TreeSum / HorizontalSum.
float LaneSum(const float* v) {
  return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

// As DotQ4_1. Lane k (elements 4k .. 4k+3) is the low nibbles of chunk k
// for k < 4 and the high nibbles of chunk k - 4 for k >= 4.
void Q4_1Scalar(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride,
                const uint8_t* aux, int64_t aux_stride, int nt, int64_t n, float* y,
                int64_t y_stride) {
  const PackedQ4_1Block* w = reinterpret_cast<const PackedQ4_1Block*>(group);
  const int64_t nb = n / kQK4_1;
  for (int t = 0; t < nt; ++t) {
    const uint8_t* xt = aux + t * aux_stride;
    for (int r = 0; r < nr; ++r) {
      float acc[8] = {};
      float summs = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const PackedActQ4_1& x = LaneAuxEntry<PackedActQ4_1>(xt, aux_stride / nb, b);
        const float d = F16ToF32(w[b].d[r]) * x.d;
        for (int k = 0; k < 8; ++k) {
          const uint8_t* q = w[b].qs[k % 4][r];
          const int shift = k < 4 ? 0 : 4;
          int32_t lane = 0;
          for (int i = 0; i < 4; ++i) lane += ((q[i] >> shift) & 0xF) * x.qs[4 * k + i];
          acc[k] = std::fma(d, static_cast<float>(lane), acc[k]);
        }
        summs += F16ToF32(w[b].m[r]) * x.s;
      }
      y[t * y_stride + r] = LaneSum(acc) + summs;
    }
  }
}

void Q8_0Scalar(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride,
                const uint8_t* aux, int64_t aux_stride, int nt, int64_t n, float* y,
                int64_t y_stride) {
  const PackedQ8_0Block* w = reinterpret_cast<const PackedQ8_0Block*>(group);
  const int64_t nb = n / kQK8_0;
  for (int t = 0; t < nt; ++t) {
    const BlockQ8_0* at = reinterpret_cast<const BlockQ8_0*>(a + t * a_stride);
    const uint8_t* xt = aux + t * aux_stride;
    for (int r = 0; r < nr; ++r) {
      float acc[8] = {};
      for (int64_t b = 0; b < nb; ++b) {
        const float d = F16ToF32(w[b].d[r]) * LaneAuxEntry<PackedActQ8_0>(xt, aux_stride / nb, b).d;
        for (int k = 0; k < 8; ++k) {
          int32_t lane = 0;
          for (int i = 0; i < 4; ++i) lane += w[b].qs[k][r][i] * at[b].qs[4 * k + i];
          acc[k] = std::fma(d, static_cast<float>(lane), acc[k]);
        }
      }
      y[t * y_stride + r] = LaneSum(acc);
    }
  }
}

template <bool kPairs>
void Q4KScalar(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
               int64_t aux_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  const PackedQ4KBlock* w = reinterpret_cast<const PackedQ4KBlock*>(group);
  const int64_t nb = n / kQK_K;
  for (int t = 0; t < nt; ++t) {
    const BlockQ8_K* at = reinterpret_cast<const BlockQ8_K*>(a + t * a_stride);
    for (int r = 0; r < nr; ++r) {
      float acc = 0.0f, accm = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const float d = F16ToF32(w[b].d[r]) * at[b].d;
        const float dmin = F16ToF32(w[b].dmin[r]) * at[b].d;
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 8; ++j) {
          const int c = j / 2, shift = (j & 1) ? 4 : 0;
          int32_t s = 0;
          for (int k = 8 * c; k < 8 * c + 8; ++k) {
            for (int i = 0; i < 4; ++i) {
              s += ((w[b].qs[k][r][i] >> shift) & 0xF) * at[b].qs[32 * j + 4 * (k % 8) + i];
            }
          }
          sumi += w[b].scales[j][r] * s;
          summ += w[b].mins[j / 2][r][j % 2] * (at[b].bsums[2 * j] + at[b].bsums[2 * j + 1]);
          if (j == 7 || (kPairs && (j & 1))) {
            acc = std::fma(static_cast<float>(sumi), d, acc);
            accm = std::fma(static_cast<float>(summ), dmin, accm);
            sumi = summ = 0;
          }
        }
      }
      y[t * y_stride + r] = acc - accm;
    }
  }
  (void)aux;
  (void)aux_stride;
}

// Q5_K / Q6_K in DotQ5_K / DotQ6_K's lane order (dot_scalar.cc).
void Q5KScalar(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t*,
               int64_t, int nt, int64_t n, float* y, int64_t y_stride) {
  const PackedQ5KBlock* w = reinterpret_cast<const PackedQ5KBlock*>(group);
  const int64_t nb = n / kQK_K;
  for (int t = 0; t < nt; ++t) {
    const BlockQ8_K* at = reinterpret_cast<const BlockQ8_K*>(a + t * a_stride);
    for (int r = 0; r < nr; ++r) {
      float acc[8] = {};
      float summs = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t lanes[8] = {};
        int32_t summ = 0;
        for (int j = 0; j < 8; ++j) {
          const int sc = w[b].scales[j][r];
          for (int k = 0; k < 8; ++k) {
            const uint8_t* qs = w[b].lane[k].qs[j / 2][r];
            for (int i = 0; i < 4; ++i) {
              int q = (qs[i] >> (4 * (j & 1))) & 0xF;
              if (w[b].lane[k].qh[r][i] & (1 << j)) q += 16;
              lanes[k] += sc * (q * at[b].qs[32 * j + 4 * k + i]);
            }
          }
          summ += w[b].mins[j / 2][r][j % 2] * (at[b].bsums[2 * j] + at[b].bsums[2 * j + 1]);
        }
        const float d = at[b].d * F16ToF32(w[b].d[r]);
        for (int k = 0; k < 8; ++k) acc[k] = std::fma(d, static_cast<float>(lanes[k]), acc[k]);
        const float dmin = -(at[b].d * F16ToF32(w[b].dmin[r]));
        summs = std::fma(dmin, static_cast<float>(summ), summs);
      }
      y[t * y_stride + r] = LaneSum(acc) + summs;
    }
  }
}

void Q6KScalar(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t*,
               int64_t, int nt, int64_t n, float* y, int64_t y_stride) {
  const PackedQ6KBlock* w = reinterpret_cast<const PackedQ6KBlock*>(group);
  const int64_t nb = n / kQK_K;
  for (int t = 0; t < nt; ++t) {
    const BlockQ8_K* at = reinterpret_cast<const BlockQ8_K*>(a + t * a_stride);
    for (int r = 0; r < nr; ++r) {
      float acc[8] = {};
      for (int64_t b = 0; b < nb; ++b) {
        int32_t lanes[8] = {};
        for (int c = 0; c < 8; ++c) {
          const int h = c / 4, s = c % 4;
          for (int k = 0; k < 8; ++k) {
            const uint8_t* ql = w[b].lane[k].ql[2 * h + s % 2][r];
            const uint8_t* qh = w[b].lane[k].qh[h][r];
            const int sc = w[b].scales[2 * c + k / 4][r];
            for (int i = 0; i < 4; ++i) {
              const int q = ((ql[i] >> (4 * (s / 2))) & 0xF) | (((qh[i] >> (2 * s)) & 3) << 4);
              lanes[k] += sc * (q * at[b].qs[32 * c + 4 * k + i]);
            }
          }
        }
        for (int k = 0; k < 8; ++k) {
          lanes[k] -= 32 * (at[b].bsums[2 * k] * w[b].scales[2 * k][r] +
                            at[b].bsums[2 * k + 1] * w[b].scales[2 * k + 1][r]);
        }
        const float d = at[b].d * F16ToF32(w[b].d[r]);
        for (int k = 0; k < 8; ++k) acc[k] = std::fma(d, static_cast<float>(lanes[k]), acc[k]);
      }
      y[t * y_stride + r] = LaneSum(acc);
    }
  }
}

}  // namespace

const PackedKernels& ScalarPackedKernels() {
  static const PackedKernels k{.q4_0 = &Q4_0Scalar,
                               .q4_1 = &Q4_1Scalar,
                               .q8_0 = &Q8_0Scalar,
                               .q4_k = &Q4KScalar<false>,
                               .q4_k_pairs = &Q4KScalar<true>,
                               .q5_k = &Q5KScalar,
                               .q6_k = &Q6KScalar};
  return k;
}

}  // namespace phi3::internal
