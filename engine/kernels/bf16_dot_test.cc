// BF16 kernels: the AVX512_BF16 instruction against the two-fma step the
// kernels emulate it with, and every BF16 kernel table this CPU runs (each
// SIMD level, and AVX-512 on vdpbf16ps) against the scalar reference, in
// both of llama.cpp's orders (simd_bf16_ops.h).
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/kernel_table.h"
#include "engine/kernels/matmul.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/test_util.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

// ---- the instruction --------------------------------------------------------

// acc = vdpbf16ps(acc, x, y) on 16 lanes. Built for AVX512_BF16 in this
// function only. REQUIRES: CpuHasAvx512Bf16().
__attribute__((target("avx512f,avx512bf16"))) void HardwareDpBf16(float acc[16],
                                                                  const uint16_t x[32],
                                                                  const uint16_t y[32]) {
  const __m512i xv = _mm512_loadu_si512(x), yv = _mm512_loadu_si512(y);
  _mm512_storeu_ps(acc, _mm512_dpbf16_ps(_mm512_loadu_ps(acc), (__m512bh)xv, (__m512bh)yv));
}

// The kernels' step (simd_bf16_ops.h): per lane, odd pair first, one fma each.
float EmulatedLane(float acc, const uint16_t* x, const uint16_t* y) {
  acc = std::fma(BF16ToF32(x[1]), BF16ToF32(y[1]), acc);
  return std::fma(BF16ToF32(x[0]), BF16ToF32(y[0]), acc);
}

// The Intel SDM's definition: the same two fmas with subnormal inputs read
// as zero and subnormal results flushed to zero.
float FlushSubnormal(float f) {
  return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f) : f;
}
float SdmLane(float acc, const uint16_t* x, const uint16_t* y) {
  auto in = [](uint16_t h) { return FlushSubnormal(BF16ToF32(h)); };
  acc = FlushSubnormal(std::fma(in(x[1]), in(y[1]), FlushSubnormal(acc)));
  return FlushSubnormal(std::fma(in(x[0]), in(y[0]), acc));
}

bool SameFloat(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::memcmp(&a, &b, 4) == 0;
}

// Whether an operand or a result of the lane is subnormal, or a result is
// +-2^-126: the hardware flushes results that are tiny before rounding, so
// one that rounds up to the smallest normal from below is zero there (not
// modelled by SdmLane; such lanes are left out of the comparisons).
bool HasSubnormal(float acc, const uint16_t* x, const uint16_t* y) {
  const float smallest_normal = std::numeric_limits<float>::min();
  for (float f : {acc, BF16ToF32(x[0]), BF16ToF32(x[1]), BF16ToF32(y[0]), BF16ToF32(y[1]),
                  std::fma(BF16ToF32(x[1]), BF16ToF32(y[1]), acc), EmulatedLane(acc, x, y),
                  SdmLane(acc, x, y)}) {
    if (std::fpclassify(f) == FP_SUBNORMAL || std::fabs(f) == smallest_normal) return true;
  }
  return false;
}

uint16_t Bf16Bits(uint32_t sign, uint32_t exponent, uint32_t mantissa) {
  return static_cast<uint16_t>((sign << 15) | (exponent << 7) | mantissa);
}

// Runs `trials` random 16-lane steps (operands from `pick`) on the hardware
// and checks each lane: equal to the SDM definition always, and to the
// kernels' two fmas whenever no operand or result is subnormal. Returns the
// number of lanes where the two fmas differ from the hardware.
template <typename Pick>
int CompareSteps(int trials, std::mt19937& rng, Pick pick) {
  int emulation_differs = 0;
  for (int trial = 0; trial < trials; ++trial) {
    float acc[16];
    uint16_t x[32], y[32];
    for (int l = 0; l < 16; ++l) {
      const uint16_t a = pick(rng);
      acc[l] = BF16ToF32(pick(rng)) * (1.0f + BF16ToF32(a) * 0x1p-20f);  // any f32 bits
      if ((rng() & 7) == 0) acc[l] = 0.0f;
    }
    for (int i = 0; i < 32; ++i) {
      x[i] = pick(rng);
      y[i] = pick(rng);
    }
    // Exact cancellation in some lanes: the pair products sum to -acc.
    if ((trial & 3) == 0) {
      y[1] = static_cast<uint16_t>(y[0] ^ 0x8000);
      x[1] = x[0];
      acc[0] = 0.0f;
    }
    float hw[16];
    std::memcpy(hw, acc, sizeof(hw));
    HardwareDpBf16(hw, x, y);
    for (int l = 0; l < 16; ++l) {
      const float sdm = SdmLane(acc[l], x + 2 * l, y + 2 * l);
      const float emu = EmulatedLane(acc[l], x + 2 * l, y + 2 * l);
      const bool tiny = HasSubnormal(acc[l], x + 2 * l, y + 2 * l);
      const float smallest_normal = std::numeric_limits<float>::min();
      const bool boundary = std::fabs(sdm) == smallest_normal ||
                            std::fabs(std::fma(BF16ToF32(x[2 * l + 1]), BF16ToF32(y[2 * l + 1]),
                                               FlushSubnormal(acc[l]))) == smallest_normal;
      EXPECT_TRUE(boundary || SameFloat(hw[l], sdm))
          << "lane " << l << " acc " << acc[l] << " x " << BF16ToF32(x[2 * l + 1]) << ","
          << BF16ToF32(x[2 * l]) << " y " << BF16ToF32(y[2 * l + 1]) << "," << BF16ToF32(y[2 * l])
          << ": hardware " << hw[l] << " SDM " << sdm;
      if (!tiny) {
        EXPECT_TRUE(SameFloat(hw[l], emu)) << "lane " << l << ": hardware " << hw[l]
                                           << " two fmas " << emu;
      }
      emulation_differs += !SameFloat(hw[l], emu);
    }
    if (::testing::Test::HasFailure()) return emulation_differs;
  }
  return emulation_differs;
}

TEST(Bf16InstructionTest, IsTwoFmasOddPairFirst) {
  if (!CpuHasAvx512Bf16()) GTEST_SKIP() << "CPU lacks AVX512_BF16 (vdpbf16ps)";
  std::mt19937 rng(7);
  // Normal values over a range where products and sums stay normal.
  const int normal_differs = CompareSteps(20000, rng, [](std::mt19937& r) {
    return Bf16Bits(r() & 1, 127 - 40 + r() % 81, r() & 127);
  });
  EXPECT_EQ(normal_differs, 0);
  // Specials mixed in: zeros, infinities, NaN, the largest finite values
  // (products overflow), values near 1 (sums round), all exponents.
  const uint16_t specials[] = {0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x7f7f, 0xff7f,
                               0x3f80, 0xbf80, 0x3f81, 0x0080, 0x8080};
  CompareSteps(20000, rng, [&](std::mt19937& r) {
    return (r() & 3) == 0 ? specials[r() % std::size(specials)]
                          : Bf16Bits(r() & 1, r() % 255, r() & 127);
  });
  // Subnormal operands and results (exponent field 0, tiny products): the
  // hardware flushes them (as the SDM says), the two fmas keep them.
  const int subnormal_differs = CompareSteps(20000, rng, [](std::mt19937& r) {
    return Bf16Bits(r() & 1, (r() & 1) ? 0 : 1 + r() % 40, r() & 127);
  });
  EXPECT_GT(subnormal_differs, 0);
}

// ---- the kernel tables ---------------------------------------------------------

struct NamedTable {
  std::string name;
  const internal::KernelTable* table;
};

// Every table whose BF16 kernels this CPU runs.
std::vector<NamedTable> Bf16Tables() {
  std::vector<NamedTable> tables;
  for (SimdLevel level : SupportedSimdLevels()) {
    const internal::KernelTable& t = SelectBySimdLevel(level, &internal::ScalarKernelTable,
                                                       &internal::Avx2KernelTable,
                                                       &internal::Avx512KernelTable);
    tables.push_back({std::string(SimdLevelName(level)), &t});
  }
  if (CpuHasAvx512Bf16()) tables.push_back({"avx512bf16", &internal::Avx512Bf16KernelTable()});
  return tables;
}

// Row values spread over 2^-20 .. 2^20, so that the order of the
// additions shows in the rounding.
std::vector<uint16_t> WideRow(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v = testing::RandomVector(n, seed);
  std::vector<uint16_t> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = F32ToBF16(std::ldexp(v[i], int(rng() % 41) - 20));
  return out;
}

TEST(Bf16KernelsTest, EveryTableIsBitIdenticalToScalarInBothOrders) {
  const internal::KernelTable& scalar = internal::ScalarKernelTable();
  std::vector<int64_t> sizes;
  for (int64_t n = 0; n <= 130; ++n) sizes.push_back(n);
  sizes.insert(sizes.end(), {160, 200, 256, 1000, 3072, 8192});
  int orders_differ = 0;
  for (const NamedTable& nt : Bf16Tables()) {
    for (int64_t n : sizes) {
      for (int offset : {0, 1, 3}) {  // in elements: rows are only 2-byte aligned
        std::vector<uint16_t> w = WideRow(n + offset, 100 + n), x = WideRow(n + offset, 200 + n);
        const uint16_t* wp = w.data() + offset;
        const uint16_t* xp = x.data() + offset;
        const float decode = scalar.bf16.dot(wp, xp, n);
        const float batch = scalar.bf16_batch.dot(wp, xp, n);
        const float got_decode = nt.table->bf16.dot(wp, xp, n);
        const float got_batch = nt.table->bf16_batch.dot(wp, xp, n);
        ASSERT_EQ(std::memcmp(&got_decode, &decode, 4), 0)
            << nt.name << " decode n=" << n << " got " << got_decode << " want " << decode;
        ASSERT_EQ(std::memcmp(&got_batch, &batch, 4), 0)
            << nt.name << " batch n=" << n << " got " << got_batch << " want " << batch;
        orders_differ += decode != batch;
      }
    }
  }
  EXPECT_GT(orders_differ, 20);
}

// Every row and token remainder of the register tiles (rows 1..11, tokens
// 1..15). 2080 elements span two whole 1024-element chunks of the AVX2
// prompt-batch tile (simd_bf16_batch_avx2.h) and one block more, with rows
// one element apart from a multiple of 32 (2-byte aligned only); for the
// AVX-512 split decode tiles (simd_split_tile.h), two k-chunks and an
// n % 64 tail.
TEST(Bf16KernelsTest, EveryTableTileEqualsItsDot) {
  for (const NamedTable& nt : Bf16Tables()) {
    for (auto [n, pad] : {std::pair<int64_t, int64_t>{512, 0}, {200, 0}, {96, 0}, {2080, 1}}) {
      const int kRows = 11, kTokens = 15;
      const int64_t stride = (n + pad) * 2;
      const std::vector<uint16_t> w = WideRow((n + pad) * kRows, 300 + n),
                                  a = WideRow((n + pad) * kTokens, 400);
      const auto* wb = reinterpret_cast<const uint8_t*>(w.data());
      const auto* ab = reinterpret_cast<const uint8_t*>(a.data());
      for (const internal::TypeKernels* k : {&nt.table->bf16, &nt.table->bf16_batch}) {
        for (int nr = 1; nr <= kRows; nr += 2) {
          for (int ntok = 1; ntok <= kTokens; ++ntok) {
            std::vector<float> y(ntok * 16, -1.0f);
            k->tile(wb, stride, nr, ab, stride, ntok, n, y.data(), 16);
            for (int r = 0; r < nr; ++r) {
              for (int t = 0; t < ntok; ++t) {
                const float d = k->dot(wb + r * stride, ab + t * stride, n);
                ASSERT_EQ(std::memcmp(&d, &y[t * 16 + r], 4), 0)
                    << nt.name << " n=" << n << " nr=" << nr << " nt=" << ntok << " r=" << r
                    << " t=" << t;
              }
            }
          }
        }
      }
    }
  }
}

// ---- llama.cpp's own outputs -----------------------------------------------------

// Pin inputs: bf16 bit patterns from an integer hash (values +-2^-7 .. 2^7),
// which a script driving llama.cpp through its C API reproduces exactly.
std::vector<uint16_t> PinRow(int64_t n, uint32_t seed) {
  std::vector<uint16_t> row(n);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u + seed * 40503u + 12345u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    row[i] = Bf16Bits(h >> 31, 120 + (h >> 8) % 14, h & 127);
  }
  return row;
}

// ggml_mul_mat of llama.cpp's zen4 build (libggml-cpu-zen4.so of
// node-llama-cpp 3.21.1, one thread) on weight rows PinRow(n, 1 + r),
// r < 4, and activations PinRow(n, 11 + t), t < 2 (given as f32, exact):
// row 0 x token 0. "decode": a one-token call (equal to its
// ggml_vec_dot_bf16); "batch": the two-token call (tinyBLAS where n % 32
// == 0, else the decode order again).
struct Bf16Pin {
  int64_t n;
  float decode;
  float batch;
};
constexpr Bf16Pin kBf16Pins[] = {
    {160, -0x1.92f614p+13f, -0x1.92f612p+13f},
    {200, -0x1.bcf77cp+12f, -0x1.bcf77cp+12f},
    {3072, -0x1.0b0b1cp+16f, -0x1.0b0b16p+16f},
};

TEST(Bf16KernelsTest, EqualLlamaCppZen4PinnedOutputs) {
  ThreadPool pool(2);
  for (const Bf16Pin& pin : kBf16Pins) {
    std::vector<uint16_t> w, x;
    for (int r = 0; r < 4; ++r) {
      const std::vector<uint16_t> row = PinRow(pin.n, 1 + r);
      w.insert(w.end(), row.begin(), row.end());
    }
    for (int t = 0; t < 2; ++t) {
      const std::vector<uint16_t> row = PinRow(pin.n, 11 + t);
      x.insert(x.end(), row.begin(), row.end());
    }
    for (const NamedTable& nt : Bf16Tables()) {
      EXPECT_EQ(nt.table->bf16.dot(w.data(), x.data(), pin.n), pin.decode)
          << nt.name << " n=" << pin.n;
      EXPECT_EQ(nt.table->bf16_batch.dot(w.data(), x.data(), pin.n), pin.batch)
          << nt.name << " n=" << pin.n;
    }
    // Through MatMul (active level): one llama.cpp batch, and decode steps.
    std::vector<float> xf(x.size());
    for (size_t i = 0; i < x.size(); ++i) xf[i] = BF16ToF32(x[i]);
    const WeightMatrix m{TensorType::kBF16, 4, pin.n, w.data()};
    std::vector<float> y(8);
    MatMul(m, xf.data(), 2, y.data(), 4, pool, MatMulRounding{.batch_tokens = 2});
    EXPECT_EQ(y[0], pin.batch) << "n=" << pin.n;
    MatMul(m, xf.data(), 2, y.data(), 4, pool, MatMulRounding{});
    EXPECT_EQ(y[0], pin.decode) << "n=" << pin.n;
  }
}

}  // namespace
}  // namespace phi3
