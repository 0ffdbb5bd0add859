#include "engine/kernels/matmul.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/dot.h"
#include "engine/kernels/packed_internal.h"
#include "engine/kernels/packed_weights.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/test_util.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

struct Matrix {
  std::vector<uint8_t> bytes;
  WeightMatrix view;
};

Matrix MakeMatrix(TensorType type, int64_t rows, int64_t cols, uint32_t seed) {
  Matrix m;
  const int64_t row_bytes = RowBytes(type, cols);
  m.bytes.resize(row_bytes * rows);
  for (int64_t r = 0; r < rows; ++r) {
    const auto v = testing::RandomVector(cols, seed + r, 0.1f);
    QuantizeRow(type, v.data(), m.bytes.data() + r * row_bytes, cols);
  }
  m.view = WeightMatrix{type, rows, cols, m.bytes.data()};
  return m;
}

class MatMulTest : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    saved_ = ActiveSimdLevel();
    if (!SetSimdLevel(GetParam())) GTEST_SKIP() << "CPU lacks " << SimdLevelName(GetParam());
  }
  void TearDown() override { SetSimdLevel(saved_); }
  SimdLevel saved_ = SimdLevel::kScalar;
};

// Rows not a multiple of the tiles (16) nor of the register blocks (4).
constexpr int64_t kRows = 37;
constexpr int64_t kCols = 512;
constexpr int64_t kMaxTokens = 17;

TEST_P(MatMulTest, BatchAndThreadInvariant) {
  ThreadPool pool1(1), pool2(2), pool3(3);
  const std::vector<float> x = testing::RandomVector(kMaxTokens * kCols, 77);
  for (TensorType type : testing::kWeightTypes) {
    const Matrix m = MakeMatrix(type, kRows, kCols, 1000);
    // Reference: each token alone, one thread.
    std::vector<float> single(kMaxTokens * kRows);
    for (int64_t t = 0; t < kMaxTokens; ++t) {
      MatMul(m.view, x.data() + t * kCols, 1, single.data() + t * kRows, pool1);
    }
    for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
      for (int64_t nt = 1; nt <= kMaxTokens; ++nt) {
        std::vector<float> y(nt * kRows, -7.0f);
        MatMul(m.view, x.data(), nt, y.data(), *pool);
        ASSERT_EQ(0, std::memcmp(y.data(), single.data(), y.size() * 4))
            << TensorTypeName(type) << " tokens=" << nt << " threads=" << pool->num_threads();
      }
    }
  }
}

TEST_P(MatMulTest, MatchesDoublePrecisionReference) {
  ThreadPool pool(2);
  const int64_t nt = 5;
  const std::vector<float> x = testing::RandomVector(nt * kCols, 99);
  for (TensorType type : testing::kWeightTypes) {
    const Matrix m = MakeMatrix(type, kRows, kCols, 2000);
    std::vector<float> y(nt * kRows);
    MatMul(m.view, x.data(), nt, y.data(), pool);
    std::vector<float> wd(kCols);
    for (int64_t r = 0; r < kRows; ++r) {
      DequantizeRow(type, m.bytes.data() + r * RowBytes(type, kCols), wd.data(), kCols);
      for (int64_t t = 0; t < nt; ++t) {
        double exact = 0, norm2 = 0;
        for (int64_t i = 0; i < kCols; ++i) {
          const double p = static_cast<double>(wd[i]) * x[t * kCols + i];
          exact += p;
          norm2 += p * p;
        }
        // Activation encoding error dominates: 8-bit blocks ~ 0.4% relative
        // rms per element; 16-bit floats ~ 0.05%. Scaled by the rms of the
        // products times sqrt(n) (random-walk of independent errors).
        const bool eight_bit = ActivationType(type) != TensorType::kF32 &&
                               ActivationType(type) != TensorType::kF16 &&
                               ActivationType(type) != TensorType::kBF16;
        const double rel = type == TensorType::kF32 ? 1e-6
                           : eight_bit                ? 2e-2
                           : type == TensorType::kBF16 ? 1e-2
                                                       : 2e-3;
        EXPECT_NEAR(y[t * kRows + r], exact, rel * std::sqrt(norm2) * 4 + 1e-7)
            << TensorTypeName(type) << " r=" << r << " t=" << t;
      }
    }
  }
}

TEST_P(MatMulTest, StridedOutputAndPrequantizedInput) {
  ThreadPool pool(2);
  const int64_t nt = 3, stride = kRows + 5;
  const std::vector<float> x = testing::RandomVector(nt * kCols, 5);
  const Matrix m = MakeMatrix(TensorType::kQ4_K, kRows, kCols, 3000);
  std::vector<float> packed(nt * kRows), strided(nt * stride, 42.0f);
  MatMul(m.view, x.data(), nt, packed.data(), pool);
  std::vector<uint8_t> xq(ActivationRowBytes(TensorType::kQ4_K, kCols) * nt);
  QuantizeActivations(TensorType::kQ4_K, x.data(), nt, kCols, xq.data(), pool);
  MatMulQuantized(m.view, xq.data(), nt, strided.data(), stride, pool);
  for (int64_t t = 0; t < nt; ++t) {
    for (int64_t r = 0; r < stride; ++r) {
      if (r < kRows) {
        ASSERT_EQ(strided[t * stride + r], packed[t * kRows + r]);
      } else {
        ASSERT_EQ(strided[t * stride + r], 42.0f);  // padding untouched
      }
    }
  }
}

TEST_P(MatMulTest, Q4_KGemmAndGemvRoundingLikeLlamaCpp) {
  ThreadPool pool1(1), pool3(3);
  constexpr int64_t kN = 768;  // 3 super-blocks
  const Matrix m = MakeMatrix(TensorType::kQ4_K, kRows, kN, 4000);
  const std::vector<float> x = testing::RandomVector(kMaxTokens * kN, 78);
  const int64_t a_bytes = ActivationRowBytes(TensorType::kQ4_K, kN);
  std::vector<uint8_t> xq(a_bytes * kMaxTokens);
  QuantizeActivations(TensorType::kQ4_K, x.data(), kMaxTokens, kN, xq.data(), pool1);
  const int64_t w_bytes = RowBytes(TensorType::kQ4_K, kN);
  int gemm_differs = 0;
  for (ThreadPool* pool : {&pool1, &pool3}) {
    for (int64_t k : {int64_t{0}, int64_t{5}, int64_t{16}, kMaxTokens, int64_t{100}}) {
      std::vector<float> y(kMaxTokens * kRows);
      MatMul(m.view, x.data(), kMaxTokens, y.data(), kRows, *pool, k);
      for (int64_t t = 0; t < kMaxTokens; ++t) {
        for (int64_t r = 0; r < kRows; ++r) {
          const uint8_t* wr = m.bytes.data() + r * w_bytes;
          const uint8_t* ar = xq.data() + t * a_bytes;
          const float gemv = testing::LlamaQ4_KReference(wr, ar, kN, 256);
          const float gemm = testing::LlamaQ4_KReference(wr, ar, kN, 64);
          ASSERT_EQ(y[t * kRows + r], t < k ? gemm : gemv) << "k=" << k << " t=" << t << " r=" << r;
          gemm_differs += gemm != gemv;
        }
      }
    }
  }
  EXPECT_GT(gemm_differs, 0);  // the two orders are distinguishable here
  // DotRow (a lone output) keeps the gemv order.
  EXPECT_EQ(DotRow(TensorType::kQ4_K, m.bytes.data(), xq.data(), kN),
            testing::LlamaQ4_KReference(m.bytes.data(), xq.data(), kN, 256));
}

// The packed matrix of `type` writes the row-major path's floats bit for
// bit at token counts 1..max_count, 65 and 70 (more than one token block of
// 64; 65: a lone token after it), for each Q4_K rounding split (tokens
// before it in the prompt rounding) and on each pool.
void ExpectPackedEqualsRowMajor(TensorType type, int64_t rows, int64_t cols, uint32_t seed,
                                const std::vector<int64_t>& splits, int64_t max_count,
                                std::initializer_list<ThreadPool*> pools) {
  constexpr int64_t kTokens = 70;
  ThreadPool pool1(1);
  const Matrix m = MakeMatrix(type, rows, cols, seed);
  ASSERT_TRUE(CanPackWeights(m.view));
  const PackedWeights p = PackWeights(m.view, pool1);
  ASSERT_EQ(p.matrix().layout, WeightLayout::kPacked16);
  const std::vector<float> x = testing::RandomVector(kTokens * cols, seed % 97);
  std::vector<int64_t> token_counts;
  for (int64_t nt = 1; nt <= max_count; ++nt) token_counts.push_back(nt);
  token_counts.push_back(65);
  token_counts.push_back(kTokens);
  for (int64_t k : splits) {
    for (int64_t nt : token_counts) {
      std::vector<float> want(nt * rows), got(nt * rows, -1.0f);
      MatMul(m.view, x.data(), nt, want.data(), rows, pool1, k);
      for (ThreadPool* pool : pools) {
        MatMul(p.matrix(), x.data(), nt, got.data(), rows, *pool, k);
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * 4))
            << TensorTypeName(type) << " rows=" << rows << " tokens=" << nt << " gemm=" << k
            << " threads=" << pool->num_threads();
      }
    }
  }
}

// The packed layout changes only the memory order: every output equals the
// row-major path's bit for bit, for any batch (every token tile width; Q4_0
// batches of any size, one token included, in PackedActQ4_0Tile tiles where
// the level has that path, the last tile 1..16 tokens), thread count, row
// tail and Q4_K rounding split.
TEST_P(MatMulTest, PackedEqualsRowMajor) {
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (TensorType type : {TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ8_0,
                          TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K}) {
    for (int64_t rows : {int64_t{5}, int64_t{16}, int64_t{53}}) {
      // Q8_0: 26 blocks = one full span of 16 blocks and a ragged one
      // (Q4_1: 24 blocks, likewise).
      const int64_t cols = type == TensorType::kQ8_0 ? 832 : 768;
      const std::vector<int64_t> splits =
          type == TensorType::kQ4_K ? std::vector<int64_t>{0, 9, 70} : std::vector<int64_t>{0};
      // Every token tile width (1..16) and a full tile plus each remainder.
      ExpectPackedEqualsRowMajor(type, rows, cols, 5000 + static_cast<uint32_t>(rows), splits, 33,
                                 {&pool1, &pool2, &pool3});
    }
  }
}

// The AVX-512 Q5_K / Q6_K tiles with either prefetch hint (a CPU runs only
// one of them: Avx512PackedKernels) write the row-major path's floats.
TEST(PackedK56Test, BothPrefetchHintsEqualRowMajor) {
  const SimdLevel saved = ActiveSimdLevel();
  if (!SetSimdLevel(SimdLevel::kAvx512)) GTEST_SKIP() << "CPU lacks avx512";
  ThreadPool pool1(1), pool2(2);
  for (bool l1_prefetch : {false, true}) {
    internal::PackedKernels k = internal::Avx512PackedKernels();
    k.q5_k = internal::Avx512PackedQ5K(l1_prefetch);
    k.q6_k = internal::Avx512PackedQ6K(l1_prefetch);
    internal::SetPackedKernelsForTest(&k);
    for (TensorType type : {TensorType::kQ5_K, TensorType::kQ6_K}) {
      ExpectPackedEqualsRowMajor(type, 53, 768, 7000 + l1_prefetch, {0}, 17, {&pool1, &pool2});
    }
    internal::SetPackedKernelsForTest(nullptr);
  }
  SetSimdLevel(saved);
}

// The AMX kernels (Q4_0, Q4_K in both roundings) write the row-major
// path's floats bit for bit, for every token count (full 16-token tiles,
// shorter tiles with their own tile configuration, the few-token fallback),
// row tail, odd block count and thread count. Param: false = the tile
// products in software (layout and epilogue, on any AVX-512 CPU), true = the
// AMX unit (skipped, with the reason, on CPUs without it).
class AmxPackedTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    saved_ = ActiveSimdLevel();
    if (!SetSimdLevel(SimdLevel::kAvx512)) {
      GTEST_SKIP() << "CPU lacks avx512: the AMX kernels' epilogue needs it";
    }
    if (GetParam()) {
      if (!CpuHasAmxInt8()) {
        GTEST_SKIP() << "no AMX-INT8 here (CPUID, XCR0 or the OS's tile-data permission): the "
                        "hardware tiles are not tested on this host, the emulated ones are";
      }
      // The engine falls back to AVX-512 if this fails; the test must not.
      EXPECT_TRUE(internal::AmxTilesSelfCheck());
    }
    internal::SetPackedKernelsForTest(GetParam() ? &internal::AmxPackedKernels()
                                                 : &internal::EmulatedAmxPackedKernels());
  }
  void TearDown() override {
    internal::SetPackedKernelsForTest(nullptr);
    SetSimdLevel(saved_);
  }
  SimdLevel saved_ = SimdLevel::kScalar;
};

TEST_P(AmxPackedTest, EqualsRowMajor) {
  ThreadPool pool1(1), pool3(3);
  for (TensorType type : {TensorType::kQ4_0, TensorType::kQ4_K}) {
    for (int64_t rows : {int64_t{5}, int64_t{16}, int64_t{53}}) {
      // Q4_0: 25 blocks (an odd one after the pairs); Q4_K: 3 super-blocks.
      const int64_t cols = type == TensorType::kQ4_0 ? 800 : 768;
      // Q4_K: every token in the prompt rounding, and a split (tokens from
      // 20 on in the decode rounding).
      const std::vector<int64_t> splits =
          type == TensorType::kQ4_K ? std::vector<int64_t>{70, 20} : std::vector<int64_t>{0};
      ExpectPackedEqualsRowMajor(type, rows, cols, 6000 + static_cast<uint32_t>(rows), splits, 36,
                                 {&pool1, &pool3});
    }
  }
}

// `bytes` ending exactly where an inaccessible page begins: a kernel that
// reads past the end faults instead of reading a neighbour's bytes.
class GuardedBuffer {
 public:
  explicit GuardedBuffer(size_t bytes) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t data_pages = (bytes + page - 1) / page;
    map_bytes_ = (data_pages + 1) * page;
    void* m = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    map_ = static_cast<uint8_t*>(m);
    if (mprotect(map_ + data_pages * page, page, PROT_NONE) != 0) return;
    data_ = map_ + data_pages * page - bytes;
  }
  ~GuardedBuffer() {
    if (map_ != nullptr) munmap(map_, map_bytes_);
  }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
  uint8_t* data() const { return data_; }  // nullptr if the mapping failed

 private:
  uint8_t* map_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t map_bytes_ = 0;
};

// A tile of fewer than 16 tokens must be configured (and read) for exactly
// its tokens: the A tiles read the activations in place, so rows past the
// last token would run off the end of the caller's buffer. Here the encoded
// activations end at an inaccessible page, so a tile reading a 17th row
// faults (the emulated tiles read every configured row, as the unit does);
// the outputs still equal the row-major path's.
TEST_P(AmxPackedTest, ShortTilesReadOnlyTheirTokens) {
  ThreadPool pool1(1);
  constexpr int64_t kRows = 16;
  for (TensorType type : {TensorType::kQ4_0, TensorType::kQ4_K}) {
    const int64_t cols = type == TensorType::kQ4_0 ? 800 : 768;
    const Matrix m = MakeMatrix(type, kRows, cols, 7100);
    const PackedWeights p = PackWeights(m.view, pool1);
    ASSERT_EQ(p.matrix().layout, WeightLayout::kPacked16);
    const int64_t row_bytes = ActivationRowBytes(type, cols);
    for (int64_t nt : {4, 5, 9, 15, 20, 31}) {
      const std::vector<float> x = testing::RandomVector(nt * cols, 7200 + nt);
      GuardedBuffer xq(nt * row_bytes);
      ASSERT_NE(xq.data(), nullptr);
      QuantizeActivations(type, x.data(), nt, cols, xq.data(), pool1);
      // Q4_K: the prompt rounding for every token, then the decode one.
      for (int64_t gemm_tokens : {int64_t{0}, nt}) {
        MatMulRounding rounding;
        rounding.batch_tokens = gemm_tokens;
        rounding.q4k_gemm_tokens = gemm_tokens;
        std::vector<float> want(nt * kRows), got(nt * kRows, -1.0f);
        MatMulQuantized(m.view, xq.data(), nt, want.data(), kRows, pool1, rounding);
        MatMulQuantized(p.matrix(), xq.data(), nt, got.data(), kRows, pool1, rounding);
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * 4))
            << TensorTypeName(type) << " tokens=" << nt << " gemm=" << gemm_tokens;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tiles, AmxPackedTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "hardware" : "emulated"; });

TEST(PackedWeightsTest, OnlyRowMajorQuantAndHalfFloatPack) {
  std::vector<uint8_t> bytes(RowBytes(TensorType::kQ4_K, 512) * 3);
  WeightMatrix w{TensorType::kQ4_K, 3, 512, bytes.data()};
  EXPECT_TRUE(CanPackWeights(w));
  w.type = TensorType::kQ5_K;
  EXPECT_TRUE(CanPackWeights(w));
  w.type = TensorType::kQ6_K;
  EXPECT_TRUE(CanPackWeights(w));
  w.type = TensorType::kQ8_0;
  EXPECT_TRUE(CanPackWeights(w));
  w.type = TensorType::kQ4_1;
  EXPECT_TRUE(CanPackWeights(w));
  w.type = TensorType::kF32;
  EXPECT_FALSE(CanPackWeights(w));
  w.type = TensorType::kQ4_0;
  w.cols = 48;  // not a whole number of blocks
  EXPECT_FALSE(CanPackWeights(w));
  w.cols = 512;
  w.layout = WeightLayout::kPacked16;
  EXPECT_FALSE(CanPackWeights(w));
}

// F16 / BF16 "packing" is a copy onto huge pages: same layout, same bytes,
// so the same outputs.
TEST(PackedWeightsTest, FloatWeightsAreCopiedRowMajor) {
  ThreadPool pool(2);
  for (TensorType type : {TensorType::kF16, TensorType::kBF16}) {
    const Matrix m = MakeMatrix(type, 37, 96, 77);
    ASSERT_TRUE(CanPackWeights(m.view));
    const PackedWeights p = PackWeights(m.view, pool);
    ASSERT_NE(p.matrix().data, nullptr);
    EXPECT_NE(p.matrix().data, m.view.data);
    EXPECT_EQ(p.matrix().layout, WeightLayout::kRowMajor);
    EXPECT_EQ(p.matrix().type, type);
    ASSERT_EQ(p.bytes(), static_cast<int64_t>(m.bytes.size()));
    EXPECT_EQ(0, std::memcmp(p.matrix().data, m.bytes.data(), m.bytes.size()));
  }
}

INSTANTIATE_TEST_SUITE_P(AllLevels, MatMulTest,
                         ::testing::Values(SimdLevel::kScalar, SimdLevel::kAvx2,
                                           SimdLevel::kAvx512),
                         [](const auto& info) { return std::string(SimdLevelName(info.param)); });

}  // namespace
}  // namespace phi3
