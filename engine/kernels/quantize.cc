// Scalar conversions, reference dequantizers and the activation quantizers.
// Weight quantizers (the search-based ones) live in quantize_weights.cc.
#include "engine/kernels/quantize.h"

#include <cassert>
#include <cmath>
#include <cstring>

#include "engine/kernels/quantize_internal.h"

namespace phi3 {

float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    // Subnormal or zero: mant * 2^-24 is exact in f32.
    const float v = static_cast<float>(mant) * 0x1p-24f;
    std::memcpy(&u, &v, 4);
    u |= sign;
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t F32ToF16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) {  // NaN: quiet it, keep the top payload bits
    return sign | 0x7e00 | static_cast<uint16_t>((abs >> 13) & 0x3ff);
  }
  if (abs >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: inf
  if (abs >= 0x38800000u) {                      // normal half
    const uint32_t r = (abs - 0x38000000u + 0xfffu + ((abs >> 13) & 1)) >> 13;
    return sign | static_cast<uint16_t>(r);
  }
  // Subnormal half (or zero): count units of 2^-24, ties to even. A result
  // of 0x400 is the smallest normal, which is also its correct encoding.
  float a;
  std::memcpy(&a, &abs, 4);
  const uint32_t r = static_cast<uint32_t>(std::nearbyint(a * 0x1p24f));
  return sign | static_cast<uint16_t>(r);
}

TensorType ActivationType(TensorType weight) {
  switch (weight) {
    case TensorType::kF32: return TensorType::kF32;
    case TensorType::kF16: return TensorType::kF16;
    case TensorType::kBF16: return TensorType::kBF16;
    case TensorType::kQ4_0:
    case TensorType::kQ8_0: return TensorType::kQ8_0;
    case TensorType::kQ4_1: return TensorType::kQ8_1;
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K: return TensorType::kQ8_K;
    default: break;
  }
  assert(false && "ActivationType: not a weight type");
  return TensorType::kF32;
}

bool IsSupportedType(TensorType type) { return GetTensorTypeTraits(type).has_value(); }

void DequantizeRow(TensorType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case TensorType::kF32:
      if (n > 0) std::memcpy(dst, src, n * sizeof(float));
      return;
    case TensorType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(s[i]);
      return;
    }
    case TensorType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(s[i]);
      return;
    }
    case TensorType::kQ4_0: {
      const BlockQ4_0* b = static_cast<const BlockQ4_0*>(src);
      for (int64_t i = 0; i < n / kQK4_0; ++i, dst += kQK4_0) {
        const float d = F16ToF32(b[i].d);
        for (int j = 0; j < 16; ++j) {
          dst[j] = d * ((b[i].qs[j] & 0xF) - 8);
          dst[j + 16] = d * ((b[i].qs[j] >> 4) - 8);
        }
      }
      return;
    }
    case TensorType::kQ4_1: {
      const BlockQ4_1* b = static_cast<const BlockQ4_1*>(src);
      for (int64_t i = 0; i < n / kQK4_1; ++i, dst += kQK4_1) {
        const float d = F16ToF32(b[i].d), m = F16ToF32(b[i].m);
        for (int j = 0; j < 16; ++j) {
          dst[j] = d * (b[i].qs[j] & 0xF) + m;
          dst[j + 16] = d * (b[i].qs[j] >> 4) + m;
        }
      }
      return;
    }
    case TensorType::kQ8_0: {
      const BlockQ8_0* b = static_cast<const BlockQ8_0*>(src);
      for (int64_t i = 0; i < n / kQK8_0; ++i, dst += kQK8_0) {
        const float d = F16ToF32(b[i].d);
        for (int j = 0; j < kQK8_0; ++j) dst[j] = d * b[i].qs[j];
      }
      return;
    }
    case TensorType::kQ8_1: {
      const BlockQ8_1* b = static_cast<const BlockQ8_1*>(src);
      for (int64_t i = 0; i < n / kQK8_1; ++i, dst += kQK8_1) {
        const float d = F16ToF32(b[i].d);
        for (int j = 0; j < kQK8_1; ++j) dst[j] = d * b[i].qs[j];
      }
      return;
    }
    case TensorType::kQ4_K: {
      const BlockQ4_K* b = static_cast<const BlockQ4_K*>(src);
      for (int64_t i = 0; i < n / kQK_K; ++i) {
        const float d = F16ToF32(b[i].d), dmin = F16ToF32(b[i].dmin);
        const uint8_t* q = b[i].qs;
        for (int c = 0; c < 4; ++c, q += 32, dst += 64) {
          uint8_t sc, m;
          GetScaleMinK4(2 * c, b[i].scales, &sc, &m);
          const float d1 = d * sc, m1 = dmin * m;
          GetScaleMinK4(2 * c + 1, b[i].scales, &sc, &m);
          const float d2 = d * sc, m2 = dmin * m;
          for (int l = 0; l < 32; ++l) dst[l] = d1 * (q[l] & 0xF) - m1;
          for (int l = 0; l < 32; ++l) dst[l + 32] = d2 * (q[l] >> 4) - m2;
        }
      }
      return;
    }
    case TensorType::kQ5_K: {
      const BlockQ5_K* b = static_cast<const BlockQ5_K*>(src);
      for (int64_t i = 0; i < n / kQK_K; ++i) {
        const float d = F16ToF32(b[i].d), dmin = F16ToF32(b[i].dmin);
        const uint8_t* q = b[i].qs;
        const uint8_t* qh = b[i].qh;
        for (int c = 0; c < 4; ++c, q += 32, dst += 64) {
          uint8_t sc, m;
          GetScaleMinK4(2 * c, b[i].scales, &sc, &m);
          const float d1 = d * sc, m1 = dmin * m;
          GetScaleMinK4(2 * c + 1, b[i].scales, &sc, &m);
          const float d2 = d * sc, m2 = dmin * m;
          const uint8_t u1 = 1 << (2 * c), u2 = 2 << (2 * c);
          for (int l = 0; l < 32; ++l) dst[l] = d1 * ((q[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
          for (int l = 0; l < 32; ++l) dst[l + 32] = d2 * ((q[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
      }
      return;
    }
    case TensorType::kQ6_K: {
      const BlockQ6_K* b = static_cast<const BlockQ6_K*>(src);
      for (int64_t i = 0; i < n / kQK_K; ++i) {
        const float d = F16ToF32(b[i].d);
        const uint8_t* ql = b[i].ql;
        const uint8_t* qh = b[i].qh;
        const int8_t* sc = b[i].scales;
        // Each 128-element half: ql[0..63], qh[0..31], scales[0..7].
        for (int h = 0; h < 2; ++h, ql += 64, qh += 32, sc += 8, dst += 128) {
          for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            dst[l] = d * sc[is + 0] * q1;
            dst[l + 32] = d * sc[is + 2] * q2;
            dst[l + 64] = d * sc[is + 4] * q3;
            dst[l + 96] = d * sc[is + 6] * q4;
          }
        }
      }
      return;
    }
    case TensorType::kQ8_K: {
      const BlockQ8_K* b = static_cast<const BlockQ8_K*>(src);
      for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K) {
        for (int j = 0; j < kQK_K; ++j) dst[j] = b[i].d * b[i].qs[j];
      }
      return;
    }
  }
  assert(false && "DequantizeRow: unsupported type");
}

namespace internal {

void QuantizeRowQ8_0Ref(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK8_0; ++i, x += kQK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    y[i].d = F32ToF16(d);
    for (int j = 0; j < kQK8_0; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
    }
  }
}

void QuantizeRowQ8_1Ref(const float* x, BlockQ8_1* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK8_1; ++i, x += kQK8_1) {
    float amax = 0.0f;
    for (int j = 0; j < kQK8_1; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQK8_1; ++j) {
      const int q = static_cast<int>(std::nearbyint(x[j] * id));
      y[i].qs[j] = static_cast<int8_t>(q);
      sum += q;
    }
    y[i].d = F32ToF16(d);
    y[i].s = F32ToF16(d * static_cast<float>(sum));
  }
}

void QuantizeRowQ8_KRef(const float* x, BlockQ8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) {
      const int v = NearestInt(iscale * x[j]);
      y[i].qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[16 * j + l];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace internal

void QuantizeRow(TensorType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case TensorType::kF32:
      if (n > 0) std::memcpy(dst, src, n * sizeof(float));
      return;
    case TensorType::kF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToF16(src[i]);
      return;
    }
    case TensorType::kBF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToBF16(src[i]);
      return;
    }
    case TensorType::kQ8_0:
      internal::QuantizeRowQ8_0Ref(src, static_cast<BlockQ8_0*>(dst), n);
      return;
    case TensorType::kQ8_1:
      internal::QuantizeRowQ8_1Ref(src, static_cast<BlockQ8_1*>(dst), n);
      return;
    case TensorType::kQ8_K:
      internal::QuantizeRowQ8_KRef(src, static_cast<BlockQ8_K*>(dst), n);
      return;
    case TensorType::kQ4_0:
      internal::QuantizeRowQ4_0(src, static_cast<BlockQ4_0*>(dst), n);
      return;
    case TensorType::kQ4_1:
      internal::QuantizeRowQ4_1(src, static_cast<BlockQ4_1*>(dst), n);
      return;
    case TensorType::kQ4_K:
      internal::QuantizeRowQ4_K(src, static_cast<BlockQ4_K*>(dst), n);
      return;
    case TensorType::kQ5_K:
      internal::QuantizeRowQ5_K(src, static_cast<BlockQ5_K*>(dst), n);
      return;
    case TensorType::kQ6_K:
      internal::QuantizeRowQ6_K(src, static_cast<BlockQ6_K*>(dst), n);
      return;
  }
  assert(false && "QuantizeRow: unsupported type");
}

}  // namespace phi3
