// Scalar reference dot products: the definition every SIMD path is tested
// against. Integer parts are exact; float accumulation is f32, in order,
// or in llama.cpp's lane order where a function says so.
#include <cmath>
#include <cstdint>

#include "engine/kernels/activation_internal.h"
#include "engine/kernels/kernel_table.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/quantize_internal.h"

namespace phi3::internal {
namespace {

float DotF32(const void* w, const void* a, int64_t n) {
  const float* x = static_cast<const float*>(w);
  const float* y = static_cast<const float*>(a);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

// llama.cpp's x86 kernels reduce 8 f32 lanes as (i + i+4), (i + i+2), (0 + 1)
// and 16 lanes as (i + i+8) first; the SIMD paths share this tree.
float TreeSum(const float* v, int lanes) {
  float t[16];
  for (int i = 0; i < lanes; ++i) t[i] = v[i];
  for (int half = lanes / 2; half >= 1; half /= 2) {
    for (int i = 0; i < half; ++i) t[i] = t[i] + t[i + half];
  }
  return t[0];
}

// F16 in ggml_vec_dot_f16's order (decode): 4 x 16 lanes, one fma per
// 64-element step each, double tail (see simd_f16_ops.h).
float DotF16(const void* w, const void* a, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  float acc[4][16] = {};
  const int64_t np = n & ~int64_t{63};
  for (int64_t i = 0; i < np; i += 64) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 16; ++l) {
        const int64_t k = i + 16 * j + l;
        acc[j][l] = std::fma(F16ToF32(x[k]), F16ToF32(y[k]), acc[j][l]);
      }
    }
  }
  float s[16];
  for (int l = 0; l < 16; ++l) s[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  double sum = TreeSum(s, 16);
  for (int64_t i = np; i < n; ++i) sum += static_cast<double>(F16ToF32(x[i]) * F16ToF32(y[i]));
  return static_cast<float>(sum);
}

// F16 in tinyBLAS's order (prompt batches): one 16-lane fma chain.
float DotF16Batch(const void* w, const void* a, int64_t n) {
  if (n % 16 != 0) return DotF16(w, a, n);
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  float acc[16] = {};
  for (int64_t i = 0; i < n; i += 16) {
    for (int l = 0; l < 16; ++l) acc[l] = std::fma(F16ToF32(x[i + l]), F16ToF32(y[i + l]), acc[l]);
  }
  return TreeSum(acc, 16);
}

// One VDPBF16PS step of 32 elements into 16 lanes: lane l adds the product
// of elements 2l + 1, then that of elements 2l, each with one fma (see
// simd_bf16_ops.h).
void Bf16Step(const uint16_t* x, const uint16_t* y, float acc[16]) {
  for (int l = 0; l < 16; ++l) {
    acc[l] = std::fma(BF16ToF32(x[2 * l + 1]), BF16ToF32(y[2 * l + 1]), acc[l]);
    acc[l] = std::fma(BF16ToF32(x[2 * l]), BF16ToF32(y[2 * l]), acc[l]);
  }
}

// BF16 in ggml_vec_dot_bf16's order (decode, AVX512_BF16): two 16-lane
// accumulators, one step each per 64 elements, tree sums added in double
// with the n % 64 tail (simd_bf16_ops.h).
float DotBF16(const void* w, const void* a, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  float acc[2][16] = {};
  const int64_t np = n & ~int64_t{63};
  for (int64_t i = 0; i < np; i += 64) {
    Bf16Step(x + i, y + i, acc[0]);
    Bf16Step(x + i + 32, y + i + 32, acc[1]);
  }
  double sum = TreeSum(acc[0], 16);
  sum += TreeSum(acc[1], 16);
  for (int64_t i = np; i < n; ++i) sum += static_cast<double>(BF16ToF32(x[i]) * BF16ToF32(y[i]));
  return static_cast<float>(sum);
}

// BF16 in tinyBLAS's order (prompt batches): one 16-lane accumulator, one
// step per 32 elements.
float DotBF16Batch(const void* w, const void* a, int64_t n) {
  if (n % 32 != 0) return DotBF16(w, a, n);
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  float acc[16] = {};
  for (int64_t i = 0; i < n; i += 32) Bf16Step(x + i, y + i, acc);
  return TreeSum(acc, 16);
}

// Q8_0 as ggml_vec_dot_q8_0_q8_0 (x86): lane k of 8 takes the exact sum of
// bytes 4k..4k+3 of each block; acc[k] = fma(d_w * d_a, float(lane), acc[k]).
float DotQ8_0(const void* w, const void* a, int64_t n) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float acc[8] = {};
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const float d = F16ToF32(x[i].d) * F16ToF32(y[i].d);
    for (int k = 0; k < 8; ++k) {
      int32_t lane = 0;
      for (int b = 4 * k; b < 4 * k + 4; ++b) lane += x[i].qs[b] * y[i].qs[b];
      acc[k] = std::fma(d, static_cast<float>(lane), acc[k]);
    }
  }
  return TreeSum(acc, 8);
}

// Q4_0 with llama.cpp's repacked-kernel rounding (what its x86 builds run
// for Q4_0; see simd_lane_ops.h): exact block sum S, then
// acc = fma(float(S), d_w * d_a, acc) once per block. Bit-identical to the
// SIMD lane kernels.
float DotQ4_0(const void* w, const void* a, int64_t n) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float acc = 0.0f;
  for (int64_t i = 0; i < n / kQK4_0; ++i) {
    int32_t s = 0;
    for (int j = 0; j < 16; ++j) {
      s += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
      s += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
    }
    acc = std::fma(static_cast<float>(s), F16ToF32(x[i].d) * F16ToF32(y[i].d), acc);
  }
  return acc;
}

// Q4_1 as ggml_vec_dot_q4_1_q8_1 (x86): lane k of 8 takes the exact sum of
// elements 4k..4k+3 of each block (low nibbles are elements 0..15, high
// nibbles 16..31); acc[k] = fma(d_w * d_a, float(lane), acc[k]); the
// offsets go to one scalar, summs += m_w * s_a per block (a product of two
// f16 values is exact in f32, so fusing it or not rounds the same); result
// = hsum(acc) + summs.
float DotQ4_1(const void* w, const void* a, int64_t n) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float acc[8] = {};
  float summs = 0.0f;
  for (int64_t i = 0; i < n / kQK4_1; ++i) {
    const float d = F16ToF32(x[i].d) * F16ToF32(y[i].d);
    for (int k = 0; k < 8; ++k) {
      int32_t lane = 0;
      for (int e = 4 * k; e < 4 * k + 4; ++e) {
        const int q = e < 16 ? (x[i].qs[e] & 0xF) : (x[i].qs[e - 16] >> 4);
        lane += q * y[i].qs[e];
      }
      acc[k] = std::fma(d, static_cast<float>(lane), acc[k]);
    }
    summs += F16ToF32(x[i].m) * F16ToF32(y[i].s);
  }
  return TreeSum(acc, 8) + summs;
}

// Q5_K as ggml_vec_dot_q5_K_q8_K (x86): lane k of 8 takes the exact sum over
// the 8 sub-blocks j of sc_j * (bytes 4k..4k+3 of q_j x a_j), with the
// unsigned 5-bit quants; acc[k] = fma(d_a * d_w, float(lane), acc[k]) per
// super-block; the mins go to one scalar: summs = fma(-(d_a * dmin_w),
// float(sum_j m_j * bsum_j), summs); result = hsum(acc) + summs.
float DotQ5_K(const void* w, const void* a, int64_t n) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float acc[8] = {};
  float summs = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int32_t lanes[8] = {};
    int32_t summ = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      GetScaleMinK4(j, x[i].scales, &sc, &m);
      const uint8_t* qs = x[i].qs + 32 * (j / 2);
      const int shift = (j & 1) ? 4 : 0;
      for (int l = 0; l < 32; ++l) {
        int q = (qs[l] >> shift) & 0xF;
        if (x[i].qh[l] & (1 << j)) q += 16;
        lanes[l / 4] += sc * (q * y[i].qs[32 * j + l]);
      }
      summ += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    }
    const float d = y[i].d * F16ToF32(x[i].d);
    for (int k = 0; k < 8; ++k) acc[k] = std::fma(d, static_cast<float>(lanes[k]), acc[k]);
    const float dmin = -(y[i].d * F16ToF32(x[i].dmin));
    summs = std::fma(dmin, static_cast<float>(summ), summs);
  }
  return TreeSum(acc, 8) + summs;
}

// Q4_K with llama.cpp's repacked-kernel rounding (see simd_lane_ops.h):
// exact int sums, then acc = fma(float(S), d_w * d_a, acc) and
// accm = fma(float(M), dmin_w * d_a, accm) once per super-block, or once per
// pair of sub-blocks when kPairs; result acc - accm. Bit-identical to the
// SIMD lane kernels.
template <bool kPairs>
float DotQ4_KLane(const void* w, const void* a, int64_t n) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float acc = 0.0f, accm = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = F16ToF32(x[i].d) * y[i].d;
    const float dmin = F16ToF32(x[i].dmin) * y[i].d;
    int32_t sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      GetScaleMinK4(j, x[i].scales, &sc, &m);
      const uint8_t* q = x[i].qs + 32 * (j / 2);
      const int shift = (j & 1) ? 4 : 0;
      int32_t s = 0;
      for (int l = 0; l < 32; ++l) s += ((q[l] >> shift) & 0xF) * y[i].qs[32 * j + l];
      sumi += sc * s;
      summ += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
      if (j == 7 || (kPairs && (j & 1))) {
        acc = std::fma(static_cast<float>(sumi), d, acc);
        accm = std::fma(static_cast<float>(summ), dmin, accm);
        sumi = summ = 0;
      }
    }
  }
  return acc - accm;
}

// Q6_K as ggml_vec_dot_q6_K_q8_K (x86): lane k of 8 takes the exact sum
// over the 8 32-element chunks c of scale(c, l) * (q_c[l] x a[32c + l]) for
// l in 4k..4k+3, with the UNSIGNED 6-bit quants (0..63), minus
// 32 * (bsum_2k * sc_2k + bsum_2k+1 * sc_2k+1); acc[k] = fma(d_a * d_w,
// float(lane), acc[k]) per super-block; result = hsum(acc).
float DotQ6_K(const void* w, const void* a, int64_t n) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float acc[8] = {};
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint8_t q[kQK_K];  // element order
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x[i].ql + 64 * h;
      const uint8_t* qh = x[i].qh + 32 * h;
      uint8_t* qq = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        qq[l] = static_cast<uint8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
        qq[l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
        qq[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
        qq[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
      }
    }
    int32_t lanes[8] = {};
    for (int e = 0; e < kQK_K; ++e) {
      lanes[(e % 32) / 4] += x[i].scales[e / 16] * (q[e] * y[i].qs[e]);
    }
    for (int k = 0; k < 8; ++k) {
      lanes[k] -= 32 * (y[i].bsums[2 * k] * x[i].scales[2 * k] +
                        y[i].bsums[2 * k + 1] * x[i].scales[2 * k + 1]);
    }
    const float d = y[i].d * F16ToF32(x[i].d);
    for (int k = 0; k < 8; ++k) acc[k] = std::fma(d, static_cast<float>(lanes[k]), acc[k]);
  }
  return TreeSum(acc, 8);
}

void ToF16(const float* x, void* dst, int64_t n) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = F32ToF16(x[i]);
}
void ToBF16(const float* x, void* dst, int64_t n) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = F32ToBF16(x[i]);
}
void ToQ8_0(const float* x, void* dst, int64_t n) {
  QuantizeRowQ8_0Ref(x, static_cast<BlockQ8_0*>(dst), n);
}
void ToQ8_1(const float* x, void* dst, int64_t n) {
  QuantizeRowQ8_1Ref(x, static_cast<BlockQ8_1*>(dst), n);
}
void ToQ8_K(const float* x, void* dst, int64_t n) {
  QuantizeRowQ8_KRef(x, static_cast<BlockQ8_K*>(dst), n);
}

void SiluMulScalar(const float* gate, const float* up, int64_t n, float* y) {
  const int64_t vec_end = n - n % kGgmlActChunk;
  for (int64_t i = 0; i < vec_end; ++i) y[i] = GgmlSiluVec(gate[i]) * up[i];
  for (int64_t i = vec_end; i < n; ++i) y[i] = GgmlSiluTail(gate[i]) * up[i];
}

void ExpRowScalar(const float* x, int64_t n, float* y) {
  const int64_t vec_end = n - n % kGgmlActChunk;
  for (int64_t i = 0; i < vec_end; ++i) y[i] = GgmlExpF(x[i]);
  for (int64_t i = vec_end; i < n; ++i) y[i] = std::exp(x[i]);
}

template <DotFn kDot>
constexpr TypeKernels Kernels() {
  return TypeKernels{kDot, &TileByDot<kDot>};
}

KernelTable MakeTable() {
  KernelTable t;
  t.f32 = Kernels<DotF32>();
  t.f16 = Kernels<DotF16>();
  t.f16_batch = Kernels<DotF16Batch>();
  t.bf16 = Kernels<DotBF16>();
  t.bf16_batch = Kernels<DotBF16Batch>();
  t.q8_0 = Kernels<DotQ8_0>();
  t.q4_0 = Kernels<DotQ4_0>();
  t.q4_1 = Kernels<DotQ4_1>();
  t.q4_k = Kernels<DotQ4_KLane<false>>();
  t.q4_k_pairs = Kernels<DotQ4_KLane<true>>();
  t.q5_k = Kernels<DotQ5_K>();
  t.q6_k = Kernels<DotQ6_K>();
  t.to_f16 = ToF16;
  t.to_bf16 = ToBF16;
  t.to_q8_0 = ToQ8_0;
  t.to_q8_1 = ToQ8_1;
  t.to_q8_k = ToQ8_K;
  t.silu_mul = SiluMulScalar;
  t.exp_row = ExpRowScalar;
  return t;
}

}  // namespace

const KernelTable& ScalarKernelTable() {
  static const KernelTable table = MakeTable();
  return table;
}

}  // namespace phi3::internal
