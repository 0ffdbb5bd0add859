#include "engine/kernels/quantize.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "engine/kernels/test_util.h"
#include "gtest/gtest.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace phi3 {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(F16Test, ExactValuesAndRounding) {
  EXPECT_EQ(F32ToF16(0.0f), 0x0000);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xc000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(65519.99f), 0x7bff);  // below the midpoint to 2^16
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);   // tie rounds to even = inf
  EXPECT_EQ(F32ToF16(1e10f), 0x7c00);
  EXPECT_EQ(F32ToF16(-std::numeric_limits<float>::infinity()), 0xfc00);
  // Ties between 1 and the next half (1 + 2^-10): 1 + 2^-11 -> 1 (even).
  EXPECT_EQ(F32ToF16(1.0f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(F32ToF16(1.0f + 3 * 0x1p-11f), 0x3c02);
  // Subnormals: units of 2^-24, ties to even.
  EXPECT_EQ(F32ToF16(0x1p-24f), 0x0001);
  EXPECT_EQ(F32ToF16(0x1p-25f), 0x0000);
  EXPECT_EQ(F32ToF16(3 * 0x1p-25f), 0x0002);
  EXPECT_EQ(F32ToF16(0x1p-14f), 0x0400);                   // smallest normal
  EXPECT_EQ(F32ToF16(0x1p-14f - 0x1p-26f), 0x0400);        // rounds up into it
  EXPECT_EQ(F32ToF16(FromBits(0x00000001)), 0x0000);       // f32 subnormal
  EXPECT_EQ(F16ToF32(0x0001), 0x1p-24f);
  EXPECT_EQ(F16ToF32(0x03ff), 1023 * 0x1p-24f);
  EXPECT_EQ(F16ToF32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(F16ToF32(0x7e00)));
  EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(F32ToF16(FromBits(0x7f800001)) & 0x7e00, 0x7e00);  // sNaN comes back quiet
}

TEST(F16Test, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(f))));
    } else {
      ASSERT_EQ(F32ToF16(f), h) << h;
    }
  }
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t HardwareF16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}

TEST(F16Test, MatchesF16cOnRandomBitPatterns) {
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "no F16C";
  std::mt19937 rng(7);
  for (int i = 0; i < 2000000; ++i) {
    const float f = FromBits(rng());
    ASSERT_EQ(F32ToF16(f), HardwareF16(f)) << std::hex << Bits(f);
  }
}
#endif

TEST(BF16Test, RoundingAndNaN) {
  EXPECT_EQ(F32ToBF16(1.0f), 0x3f80);
  EXPECT_EQ(F32ToBF16(FromBits(0x3f808000)), 0x3f80);  // tie -> even
  EXPECT_EQ(F32ToBF16(FromBits(0x3f818000)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(F32ToBF16(FromBits(0x3f808001)), 0x3f81);
  EXPECT_EQ(F32ToBF16(FromBits(0x7f800001)), 0x7fc0);  // NaN stays NaN, quiet
  EXPECT_EQ(F32ToBF16(FromBits(0xffffffff)), 0xffff);
  EXPECT_EQ(F32ToBF16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(F32ToBF16(FromBits(0x7f7fffff)), 0x7f80);  // largest float rounds to inf
  EXPECT_EQ(F32ToBF16(FromBits(0x00010000)), 0x0001);  // subnormals kept
  EXPECT_EQ(BF16ToF32(0xc000), -2.0f);
}

TEST(ActivationTypeTest, MirrorsGgmlVecDotType) {
  EXPECT_EQ(ActivationType(TensorType::kF32), TensorType::kF32);
  EXPECT_EQ(ActivationType(TensorType::kF16), TensorType::kF16);
  EXPECT_EQ(ActivationType(TensorType::kBF16), TensorType::kBF16);
  EXPECT_EQ(ActivationType(TensorType::kQ4_0), TensorType::kQ8_0);
  EXPECT_EQ(ActivationType(TensorType::kQ8_0), TensorType::kQ8_0);
  EXPECT_EQ(ActivationType(TensorType::kQ4_1), TensorType::kQ8_1);
  EXPECT_EQ(ActivationType(TensorType::kQ4_K), TensorType::kQ8_K);
  EXPECT_EQ(ActivationType(TensorType::kQ5_K), TensorType::kQ8_K);
  EXPECT_EQ(ActivationType(TensorType::kQ6_K), TensorType::kQ8_K);
}

// Hand-built blocks pin the bit layouts.
TEST(LayoutTest, Q4_0NibbleOrder) {
  BlockQ4_0 b{};
  b.d = F32ToF16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float out[32];
  DequantizeRow(TensorType::kQ4_0, &b, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.5f * (j - 8));
    EXPECT_EQ(out[j + 16], 0.5f * (7 - j));
  }
}

TEST(LayoutTest, Q4_KScalesAndHalves) {
  BlockQ4_K b{};
  b.d = F32ToF16(1.0f);
  b.dmin = F32ToF16(0.25f);
  // Sub-block 1: scale 3, min 4; sub-block 5 (j >= 4 packing): scale 33, min 50.
  b.scales[1] = 3;
  b.scales[5] = 4;
  b.scales[9] = (33 & 0xF) | ((50 & 0xF) << 4);
  b.scales[1] |= (33 >> 4) << 6;
  b.scales[5] |= (50 >> 4) << 6;
  for (int l = 0; l < 32; ++l) b.qs[l] = 0x70;        // chunk 0: high nibble 7
  for (int l = 0; l < 32; ++l) b.qs[64 + l] = 0x50;   // chunk 2: high nibble 5
  float out[256];
  DequantizeRow(TensorType::kQ4_K, &b, out, 256);
  EXPECT_EQ(out[32], 3.0f * 7 - 0.25f * 4);   // sub-block 1 = high half of chunk 0
  EXPECT_EQ(out[160], 33.0f * 5 - 0.25f * 50);  // sub-block 5 = high half of chunk 2
  EXPECT_EQ(out[0], 0.0f);
}

TEST(LayoutTest, Q6_KScalesAndBits) {
  BlockQ6_K b{};
  b.d = F32ToF16(2.0f);
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(j - 8);
  std::memset(b.ql, 0, sizeof(b.ql));
  std::memset(b.qh, 0, sizeof(b.qh));
  b.ql[0] = 0x21;   // element 0 low nibble 1, element 64 low nibble 2
  b.qh[0] = 0xE4;   // element 0 +0<<4, element 32 +1<<4, 64 +2<<4, 96 +3<<4
  float out[256];
  DequantizeRow(TensorType::kQ6_K, &b, out, 256);
  EXPECT_EQ(out[0], 2.0f * (0 - 8) * (1 - 32));
  EXPECT_EQ(out[32], 2.0f * (2 - 8) * (16 - 32));
  EXPECT_EQ(out[64], 2.0f * (4 - 8) * (2 + 32 - 32));
  EXPECT_EQ(out[96], 2.0f * (6 - 8) * (48 - 32));
}

TEST(ActivationQuantTest, Q8_0RoundsHalfToEven) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // id = 1
  x[1] = 2.5f;
  x[2] = -3.5f;
  x[3] = 0.5f;
  BlockQ8_0 b;
  QuantizeRow(TensorType::kQ8_0, x.data(), &b, 32);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], -4);
  EXPECT_EQ(b.qs[3], 0);
  EXPECT_EQ(F16ToF32(b.d), 1.0f);
}

TEST(ActivationQuantTest, Q8_1CarriesScaledSum) {
  const std::vector<float> x = testing::RandomVector(64, 3);
  BlockQ8_1 b[2];
  QuantizeRow(TensorType::kQ8_1, x.data(), b, 64);
  for (const BlockQ8_1& blk : b) {
    int sum = 0;
    for (int8_t q : blk.qs) sum += q;
    EXPECT_NEAR(F16ToF32(blk.s), F16ToF32(blk.d) * sum, std::fabs(F16ToF32(blk.d) * sum) * 2e-3);
  }
}

TEST(ActivationQuantTest, Q8_KMatchesGgmlReference) {
  std::vector<float> x = testing::RandomVector(512, 5);
  x[300] = -9.0f;  // the extreme value of block 1: maps to -127, d > 0
  std::vector<float> zero(256, 0.0f);
  x.insert(x.end(), zero.begin(), zero.end());
  BlockQ8_K b[3];
  QuantizeRow(TensorType::kQ8_K, x.data(), b, 768);
  EXPECT_EQ(b[1].qs[300 - 256], -127);
  EXPECT_FLOAT_EQ(b[1].d, 9.0f / 127.0f);
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += b[i].qs[16 * j + l];
      EXPECT_EQ(b[i].bsums[j], sum);
    }
  }
  EXPECT_EQ(b[2].d, 0.0f);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b[2].bsums[j], 0);
}

// Relative RMS error of quantize -> dequantize on N(0, 1) data.
double RoundTripError(TensorType type, const std::vector<float>& x) {
  std::vector<uint8_t> q(RowBytes(type, x.size()));
  QuantizeRow(type, x.data(), q.data(), x.size());
  std::vector<float> y(x.size());
  DequantizeRow(type, q.data(), y.data(), x.size());
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (x[i] - y[i]) * (x[i] - y[i]);
    ref += x[i] * x[i];
  }
  return std::sqrt(err / ref);
}

TEST(RoundTripTest, ErrorWithinBounds) {
  const std::vector<float> x = testing::RandomVector(256 * 64, 11);
  struct Case {
    TensorType type;
    double bound;
  };
  // Bounds: a little above the measured error of each format on gaussians
  // (ggml's own quantizers land at about the same values).
  const Case cases[] = {
      {TensorType::kF32, 0.0},     {TensorType::kF16, 3e-4},   {TensorType::kBF16, 2.5e-3},
      {TensorType::kQ8_0, 6e-3},   {TensorType::kQ8_1, 6e-3},  {TensorType::kQ8_K, 7.5e-3},
      {TensorType::kQ6_K, 0.025},  {TensorType::kQ5_K, 0.045}, {TensorType::kQ4_K, 0.09},
      {TensorType::kQ4_1, 0.11},   {TensorType::kQ4_0, 0.125},
  };
  for (const Case& c : cases) {
    const double err = RoundTripError(c.type, x);
    EXPECT_LE(err, c.bound) << TensorTypeName(c.type);
    RecordProperty(TensorTypeName(c.type), std::to_string(err));
    std::printf("%-5s relative rms error %.5f\n", TensorTypeName(c.type).c_str(), err);
  }
}

TEST(RoundTripTest, ConstantAndZeroBlocks) {
  for (TensorType type : testing::kWeightTypes) {
    for (float v : {0.0f, 1.5f, -2.0f}) {
      std::vector<float> x(256, v);
      std::vector<uint8_t> q(RowBytes(type, 256));
      QuantizeRow(type, x.data(), q.data(), 256);
      std::vector<float> y(256);
      DequantizeRow(type, q.data(), y.data(), 256);
      for (int i = 0; i < 256; ++i) {
        ASSERT_NEAR(y[i], v, std::fabs(v) * 0.07 + 1e-6) << TensorTypeName(type) << " " << v;
      }
    }
  }
}

}  // namespace
}  // namespace phi3
