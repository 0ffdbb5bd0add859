// Scalar reference dot products: the definition every SIMD path is tested
// against. Integer parts are exact; float accumulation is f32, in order.
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

float DotF16(const void* w, const void* a, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += F16ToF32(x[i]) * F16ToF32(y[i]);
  return sum;
}

float DotBF16(const void* w, const void* a, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += BF16ToF32(x[i]) * BF16ToF32(y[i]);
  return sum;
}

float DotQ8_0(const void* w, const void* a, int64_t n) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    sum += sumi * (F16ToF32(x[i].d) * F16ToF32(y[i].d));
  }
  return sum;
}

float DotQ4_0(const void* w, const void* a, int64_t n) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK4_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
      sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
    }
    sum += sumi * (F16ToF32(x[i].d) * F16ToF32(y[i].d));
  }
  return sum;
}

float DotQ4_1(const void* w, const void* a, int64_t n) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK4_1; ++i) {
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += (x[i].qs[j] & 0xF) * y[i].qs[j];
      sumi += (x[i].qs[j] >> 4) * y[i].qs[j + 16];
    }
    sum += sumi * (F16ToF32(x[i].d) * F16ToF32(y[i].d)) + F16ToF32(x[i].m) * F16ToF32(y[i].s);
  }
  return sum;
}

// Q4_K and Q5_K share the scale/min handling; `bits5` selects the qh bit.
template <bool kFiveBit, typename Block>
float DotK45(const void* w, const void* a, int64_t n) {
  const Block* x = static_cast<const Block*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int32_t sumi = 0, summ = 0;
    const int8_t* q8 = y[i].qs;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      GetScaleMinK4(j, x[i].scales, &sc, &m);
      const int c = j / 2;
      const bool high = j & 1;
      int32_t s = 0;
      for (int l = 0; l < 32; ++l) {
        int q = high ? (x[i].qs[32 * c + l] >> 4) : (x[i].qs[32 * c + l] & 0xF);
        if constexpr (kFiveBit) {
          if (x[i].qh[l] & (1 << j)) q += 16;
        }
        s += q * q8[32 * j + l];
      }
      sumi += sc * s;
      summ += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    }
    const float d = y[i].d * F16ToF32(x[i].d);
    const float dmin = y[i].d * F16ToF32(x[i].dmin);
    sum += d * sumi - dmin * summ;
  }
  return sum;
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

float DotQ6_K(const void* w, const void* a, int64_t n) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t q[kQK_K];
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x[i].ql + 64 * h;
      const uint8_t* qh = x[i].qh + 32 * h;
      int8_t* qq = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        qq[l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        qq[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        qq[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        qq[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int32_t sumi = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) s += q[16 * j + l] * y[i].qs[16 * j + l];
      sumi += x[i].scales[j] * s;
    }
    sum += (y[i].d * F16ToF32(x[i].d)) * sumi;
  }
  return sum;
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
  t.bf16 = Kernels<DotBF16>();
  t.q8_0 = Kernels<DotQ8_0>();
  t.q4_0 = Kernels<DotQ4_0>();
  t.q4_1 = Kernels<DotQ4_1>();
  t.q4_k = Kernels<DotQ4_KLane<false>>();
  t.q4_k_pairs = Kernels<DotQ4_KLane<true>>();
  t.q5_k = Kernels<DotK45<true, BlockQ5_K>>();
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
