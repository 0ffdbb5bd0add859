// Every SIMD path against the scalar reference, for every type, over many
// sizes and misaligned rows.
#include "engine/kernels/dot.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/kernel_table.h"
#include "engine/kernels/matmul.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/test_util.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

class LevelTest : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    saved_ = ActiveSimdLevel();
    if (!SetSimdLevel(GetParam())) GTEST_SKIP() << "CPU lacks " << SimdLevelName(GetParam());
  }
  void TearDown() override { SetSimdLevel(saved_); }
  SimdLevel saved_ = SimdLevel::kScalar;
};

std::string LevelName(const ::testing::TestParamInfo<SimdLevel>& info) {
  return std::string(SimdLevelName(info.param));
}

// Element counts: 0, one block, odd block counts, several vector widths,
// and the model's row lengths.
std::vector<int64_t> Sizes(TensorType type) {
  const int64_t block = GetTensorTypeTraits(ActivationType(type))->block_elements;
  const int64_t wblock = GetTensorTypeTraits(type)->block_elements;
  const int64_t unit = std::max(block, wblock);
  std::vector<int64_t> sizes;
  for (int64_t k : {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 33}) sizes.push_back(k * unit);
  if (unit == 1) {
    for (int64_t k : {1, 3, 7, 15, 31, 33, 63, 65, 127, 129}) sizes.push_back(k);
  }
  sizes.push_back(3072);
  sizes.push_back(8192);
  return sizes;
}

// Bytes encoded at an offset from an aligned buffer (2 and 6: rows of an
// mmapped file are only 2-byte aligned).
struct Encoded {
  std::vector<uint8_t> storage;
  uint8_t* data;
};
Encoded Encode(TensorType type, const std::vector<float>& x, int offset) {
  Encoded e;
  e.storage.resize(RowBytes(type, x.size()) + 64);
  e.data = e.storage.data() + offset;
  QuantizeRow(type, x.data(), e.data, x.size());
  return e;
}

TEST_P(LevelTest, ActivationEncodingMatchesReference) {
  for (TensorType act : {TensorType::kF16, TensorType::kBF16, TensorType::kQ8_0,
                         TensorType::kQ8_1, TensorType::kQ8_K}) {
    for (int64_t n : Sizes(act == TensorType::kQ8_K ? TensorType::kQ4_K : TensorType::kQ8_0)) {
      std::vector<float> x = testing::RandomVector(n, static_cast<uint32_t>(n) + 1);
      if (n >= 64) {
        x[3] = 0.0f;
        std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero block
      }
      std::vector<uint8_t> ref(RowBytes(act, n) + 8), got(RowBytes(act, n) + 8);
      QuantizeRow(act, x.data(), ref.data(), n);
      QuantizeActivationRow(act, x.data(), got.data() + 4, n);
      ASSERT_EQ(0, std::memcmp(ref.data(), got.data() + 4, RowBytes(act, n)))
          << TensorTypeName(act) << " n=" << n;
    }
  }
}

TEST_P(LevelTest, DotMatchesScalarAndDoubleReference) {
  const internal::KernelTable& scalar = internal::ScalarKernelTable();
  for (TensorType type : testing::kWeightTypes) {
    const TensorType act = ActivationType(type);
    for (int64_t n : Sizes(type)) {
      // F32 rows need their natural 4-byte alignment (GGUF guarantees it).
      const int step = type == TensorType::kF32 ? 2 : 1;
      for (int offset : {0, 2 * step, 6 * step}) {
        const std::vector<float> w = testing::RandomVector(n, 100 + n);
        const std::vector<float> x = testing::RandomVector(n, 200 + n, 3.0f);
        Encoded we = Encode(type, w, offset);
        Encoded xe = Encode(act, x, act == TensorType::kQ8_K ? 4 : offset);  // Q8_K: float d
        const float got = DotRow(type, we.data, xe.data, n);
        const float want = scalar.ForWeight(type)->dot(we.data, xe.data, n);
        // Exact math on the encoded values.
        std::vector<float> wd(n), xd(n);
        DequantizeRow(type, we.data, wd.data(), n);
        DequantizeRow(act, xe.data, xd.data(), n);
        double exact = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
          exact += static_cast<double>(wd[i]) * xd[i];
          mag += std::fabs(static_cast<double>(wd[i]) * xd[i]);
        }
        // Integer block sums are exact on every path. F32 alone keeps each
        // level's own f32 accumulation order: bound ~ 4 * sqrt(n) ulps of the
        // magnitude. Every other type rounds in llama.cpp's order on every
        // level, scalar included, so it equals the scalar reference exactly.
        const double tol = 4 * 6e-8 * std::sqrt(static_cast<double>(n)) * mag + 1e-30;
        if (type == TensorType::kF32) {
          EXPECT_NEAR(got, want, tol) << "f32 n=" << n << " off=" << offset;
        } else {
          EXPECT_EQ(std::memcmp(&got, &want, 4), 0)
              << TensorTypeName(type) << " n=" << n << " off=" << offset << " got " << got
              << " want " << want;
        }
        // Q4_1's offset term uses the f16-rounded block sum s of Q8_1.
        double s_error = 0;
        if (type == TensorType::kQ4_1) {
          for (int64_t b = 0; b < n / 32; ++b) {
            const auto* wb = reinterpret_cast<const BlockQ4_1*>(we.data) + b;
            const auto* xb = reinterpret_cast<const BlockQ8_1*>(xe.data) + b;
            s_error += std::fabs(F16ToF32(wb->m) * F16ToF32(xb->s)) * 0x1p-10;
          }
        }
        EXPECT_NEAR(got, exact, 2 * tol + s_error) << TensorTypeName(type) << " n=" << n;
      }
    }
  }
}

TEST_P(LevelTest, TileIsBitIdenticalToDot) {
  const internal::KernelTable& table = internal::ActiveKernelTable();
  const int64_t n = 512;
  for (TensorType type : testing::kWeightTypes) {
    const TensorType act = ActivationType(type);
    const int64_t w_stride = RowBytes(type, n), a_stride = RowBytes(act, n);
    const int kRows = 11, kTokens = 9;
    std::vector<uint8_t> w(w_stride * kRows), a(a_stride * kTokens);
    for (int r = 0; r < kRows; ++r) {
      const auto v = testing::RandomVector(n, 300 + r);
      QuantizeRow(type, v.data(), w.data() + r * w_stride, n);
    }
    for (int t = 0; t < kTokens; ++t) {
      const auto v = testing::RandomVector(n, 400 + t);
      QuantizeRow(act, v.data(), a.data() + t * a_stride, n);
    }
    // The type's kernels and its prompt-batch variant, if any.
    std::vector<const internal::TypeKernels*> variants = {table.ForWeight(type)};
    if (type == TensorType::kF16) variants.push_back(&table.f16_batch);
    if (type == TensorType::kBF16) variants.push_back(&table.bf16_batch);
    if (type == TensorType::kQ4_K) variants.push_back(&table.q4_k_pairs);
    for (size_t v = 0; v < variants.size(); ++v) {
      const internal::TypeKernels* k = variants[v];
      for (int nr = 1; nr <= kRows; nr += 3) {
        for (int nt = 1; nt <= kTokens; nt += 2) {
          std::vector<float> y(nt * 16, -1.0f);
          k->tile(w.data(), w_stride, nr, a.data(), a_stride, nt, n, y.data(), 16);
          for (int r = 0; r < nr; ++r) {
            for (int t = 0; t < nt; ++t) {
              const float d = k->dot(w.data() + r * w_stride, a.data() + t * a_stride, n);
              ASSERT_EQ(std::memcmp(&d, &y[t * 16 + r], 4), 0)
                  << TensorTypeName(type) << " variant " << v << " nr=" << nr << " nt=" << nt
                  << " r=" << r << " t=" << t;
            }
          }
        }
      }
    }
  }
}

// The float types' decode tiles at every token count of a batched decode
// step (1..17: pairs, whole token tiles and their remainders) and at lengths
// that span several k-chunks and end in an n % 64 tail: each (row, token)
// equals the one-token dot bit for bit.
TEST_P(LevelTest, FloatDecodeTileIsBitIdenticalToDotAtEveryTokenCount) {
  const internal::KernelTable& table = internal::ActiveKernelTable();
  for (TensorType type : {TensorType::kF16, TensorType::kBF16}) {
    const internal::TypeKernels* k = table.ForWeight(type);
    for (int64_t n : {int64_t{40}, int64_t{1256}}) {
      const int64_t stride = RowBytes(type, n);
      // 37 rows: several whole row groups (the split tiles' 4, BF16's 16)
      // and a ragged one.
      const int kRows = 37, kTokens = 17;
      std::vector<uint8_t> w(stride * kRows), a(stride * kTokens);
      for (int r = 0; r < kRows; ++r) {
        const auto v = testing::RandomVector(n, 700 + r);
        QuantizeRow(type, v.data(), w.data() + r * stride, n);
      }
      for (int t = 0; t < kTokens; ++t) {
        const auto v = testing::RandomVector(n, 800 + t);
        QuantizeRow(type, v.data(), a.data() + t * stride, n);
      }
      for (int nr : {1, 4, 7, kRows}) {
        for (int nt = 1; nt <= kTokens; ++nt) {
          std::vector<float> y(nt * kRows, -1.0f);
          k->tile(w.data(), stride, nr, a.data(), stride, nt, n, y.data(), kRows);
          for (int r = 0; r < nr; ++r) {
            for (int t = 0; t < nt; ++t) {
              const float d = k->dot(w.data() + r * stride, a.data() + t * stride, n);
              ASSERT_EQ(std::memcmp(&d, &y[t * kRows + r], 4), 0)
                  << TensorTypeName(type) << " n=" << n << " nr=" << nr << " nt=" << nt
                  << " r=" << r << " t=" << t;
            }
          }
        }
      }
    }
  }
}

// llama.cpp's repacked x86 kernels (the ones it runs for Q4_0 and Q4_K)
// keep one f32 accumulator per output and add each block in order with one
// fused multiply-add: acc = fma(float(S_b), d_w * d_a, acc), Q4_K with a
// second accumulator for the mins (testing::LlamaQ4_KReference). Every
// level, scalar included, must round exactly so.
float RepackedQ4_0Reference(const BlockQ4_0* w, const BlockQ8_0* a, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int s = 0;
    for (int j = 0; j < 16; ++j) {
      s += ((w[b].qs[j] & 0xF) - 8) * a[b].qs[j] + ((w[b].qs[j] >> 4) - 8) * a[b].qs[j + 16];
    }
    acc = std::fma(static_cast<float>(s), F16ToF32(w[b].d) * F16ToF32(a[b].d), acc);
  }
  return acc;
}

TEST_P(LevelTest, Q4_0AndQ4_KRoundLikeLlamaCppRepackedKernels) {
  for (int64_t n : {256, 3072, 8192}) {
    const auto w = testing::RandomVector(n, 11 + n);
    const auto x = testing::RandomVector(n, 12 + n);
    std::vector<uint8_t> w0(RowBytes(TensorType::kQ4_0, n)), a0(RowBytes(TensorType::kQ8_0, n));
    std::vector<uint8_t> wk(RowBytes(TensorType::kQ4_K, n)), ak(RowBytes(TensorType::kQ8_K, n));
    QuantizeRow(TensorType::kQ4_0, w.data(), w0.data(), n);
    QuantizeRow(TensorType::kQ8_0, x.data(), a0.data(), n);
    QuantizeRow(TensorType::kQ4_K, w.data(), wk.data(), n);
    QuantizeRow(TensorType::kQ8_K, x.data(), ak.data(), n);
    const float want0 = RepackedQ4_0Reference(reinterpret_cast<const BlockQ4_0*>(w0.data()),
                                              reinterpret_cast<const BlockQ8_0*>(a0.data()), n / 32);
    const float wantk = testing::LlamaQ4_KReference(wk.data(), ak.data(), n, 256);
    EXPECT_EQ(DotRow(TensorType::kQ4_0, w0.data(), a0.data(), n), want0) << n;
    EXPECT_EQ(DotRow(TensorType::kQ4_K, wk.data(), ak.data(), n), wantk) << n;
  }
}

// Q8_0, Q4_1, Q5_K, Q6_K, F16 and BF16 are not repacked by llama.cpp on
// x86: it runs ggml_vec_dot_* per (row, token), with their own lane layout
// and f32 accumulation order. The scalar reference spells that order out
// (dot_scalar.cc); every SIMD level must agree with it bit for bit
// (bf16_dot_test.cc: BF16 in both orders on every table, vdpbf16ps included).
TEST_P(LevelTest, VecDotTypesAreBitIdenticalToScalarOrder) {
  const internal::KernelTable& scalar = internal::ScalarKernelTable();
  for (TensorType type : {TensorType::kQ8_0, TensorType::kQ4_1, TensorType::kQ5_K,
                          TensorType::kQ6_K, TensorType::kF16, TensorType::kBF16}) {
    const TensorType act = ActivationType(type);
    std::vector<int64_t> sizes = Sizes(type);
    if (type == TensorType::kF16 || type == TensorType::kBF16) {
      sizes.insert(sizes.end(), {64, 96, 160, 200, 1000});
    }
    for (int64_t n : sizes) {
      for (int offset : {0, 2, 6}) {
        const std::vector<float> w = testing::RandomVector(n, 500 + n);
        const std::vector<float> x = testing::RandomVector(n, 600 + n, 3.0f);
        Encoded we = Encode(type, w, offset);
        Encoded xe = Encode(act, x, act == TensorType::kQ8_K ? 4 : offset);
        const float got = DotRow(type, we.data, xe.data, n);
        const float want = scalar.ForWeight(type)->dot(we.data, xe.data, n);
        ASSERT_EQ(std::memcmp(&got, &want, 4), 0)
            << TensorTypeName(type) << " n=" << n << " off=" << offset << " got " << got
            << " want " << want;
      }
    }
  }
}

// Outputs of ggml_mul_mat (libggml-cpu-zen4.so of node-llama-cpp 3.21.1,
// one thread, rows 0..3 of weights RandomVector(n, 31 + 7r + n), activations
// RandomVector(n, 32 + n, 2) as token 0; pinned: row 0). "decode" = the
// single-token call (ggml_vec_dot_*).
// "batch" = token 0 of a 2-token call (ggml_mul_mat with ne11 = 2: tinyBLAS
// for F16; the same vec_dot as decode for the others).
struct GgmlPin {
  TensorType type;
  int64_t n;
  float decode;
  float batch;
};
constexpr GgmlPin kGgmlPins[] = {
    {TensorType::kQ8_0, 256, 0x1.5920eep+4f, 0x1.5920eep+4f},
    {TensorType::kQ8_0, 3072, 0x1.df4e58p+6f, 0x1.df4e58p+6f},
    {TensorType::kQ5_K, 256, 0x1.445a78p+4f, 0x1.445a78p+4f},
    {TensorType::kQ5_K, 3072, 0x1.ed9938p+6f, 0x1.ed9938p+6f},
    {TensorType::kQ6_K, 256, 0x1.62095p+4f, 0x1.62095p+4f},
    {TensorType::kQ6_K, 3072, 0x1.ee03acp+6f, 0x1.ee03acp+6f},
    {TensorType::kF16, 160, 0x1.56efaep+4f, 0x1.56efbp+4f},
    {TensorType::kF16, 3072, 0x1.df44a8p+6f, 0x1.df44a4p+6f},
};

TEST_P(LevelTest, VecDotTypesEqualGgmlPinnedOutputs) {
  for (const GgmlPin& pin : kGgmlPins) {
    const TensorType act = ActivationType(pin.type);
    const std::vector<float> w = testing::RandomVector(pin.n, 31 + pin.n);
    const std::vector<float> x = testing::RandomVector(pin.n, 32 + pin.n, 2.0f);
    std::vector<uint8_t> wq(RowBytes(pin.type, pin.n)), xq(RowBytes(act, pin.n));
    QuantizeRow(pin.type, w.data(), wq.data(), pin.n);
    QuantizeActivationRow(act, x.data(), xq.data(), pin.n);
    EXPECT_EQ(DotRow(pin.type, wq.data(), xq.data(), pin.n), pin.decode)
        << TensorTypeName(pin.type) << " n=" << pin.n;
    // The same through MatMul: 4 rows (row 0 pinned), 2 tokens, as one
    // llama.cpp batch and as two decode steps.
    std::vector<float> w4;
    for (int r = 0; r < 4; ++r) {
      const auto v = testing::RandomVector(pin.n, 31 + 7 * r + pin.n);
      w4.insert(w4.end(), v.begin(), v.end());
    }
    std::vector<uint8_t> w4q(4 * RowBytes(pin.type, pin.n));
    for (int r = 0; r < 4; ++r) {
      QuantizeRow(pin.type, w4.data() + r * pin.n, w4q.data() + r * RowBytes(pin.type, pin.n),
                  pin.n);
    }
    std::vector<float> x2 = x;
    const auto x1 = testing::RandomVector(pin.n, 33 + pin.n, 2.0f);
    x2.insert(x2.end(), x1.begin(), x1.end());
    const WeightMatrix m{pin.type, 4, pin.n, w4q.data()};
    ThreadPool pool(2);
    std::vector<float> y(8);
    MatMul(m, x2.data(), 2, y.data(), 4, pool, MatMulRounding{.batch_tokens = 2});
    EXPECT_EQ(y[0], pin.batch) << TensorTypeName(pin.type) << " n=" << pin.n;
    MatMul(m, x2.data(), 2, y.data(), 4, pool, MatMulRounding{});
    EXPECT_EQ(y[0], pin.decode) << TensorTypeName(pin.type) << " n=" << pin.n;
  }
}

// F16 and BF16 prompt batches: tokens [0, batch_tokens) get tinyBLAS's
// order, the rest ggml_vec_dot's; when ggml's tinyBLAS declines the shape
// (rows % 4 != 0, or cols not a multiple of its vector: 16 elements for
// F16, 32 for BF16) every token gets the decode order.
TEST_P(LevelTest, FloatBatchRoundingFollowsTinyBlasRules) {
  using Kernels = internal::TypeKernels internal::KernelTable::*;
  struct Case {
    TensorType type;
    int64_t cols_multiple;
    Kernels decode, batch;
  };
  const internal::KernelTable& table = internal::ActiveKernelTable();
  const internal::KernelTable& scalar = internal::ScalarKernelTable();
  ThreadPool pool1(1), pool3(3);
  for (const Case& c : {Case{TensorType::kF16, 16, &internal::KernelTable::f16,
                             &internal::KernelTable::f16_batch},
                        Case{TensorType::kBF16, 32, &internal::KernelTable::bf16,
                             &internal::KernelTable::bf16_batch}}) {
    int orders_differ = 0;
    for (int64_t rows : {int64_t{8}, int64_t{6}}) {
      for (int64_t cols : {int64_t{3072}, int64_t{200}, int64_t{48}, int64_t{24}}) {
        constexpr int64_t kTokens = 11;
        const auto wf = testing::RandomVector(rows * cols, 700 + rows + cols);
        const auto x = testing::RandomVector(kTokens * cols, 800 + cols, 2.0f);
        std::vector<uint16_t> w(rows * cols), xh(kTokens * cols);
        QuantizeRow(c.type, wf.data(), w.data(), rows * cols);
        QuantizeRow(c.type, x.data(), xh.data(), kTokens * cols);
        const WeightMatrix m{c.type, rows, cols, w.data()};
        const bool tiny_blas = rows % 4 == 0 && cols % c.cols_multiple == 0;
        for (int64_t batch : {int64_t{0}, int64_t{5}, kTokens}) {
          for (ThreadPool* pool : {&pool1, &pool3}) {
            std::vector<float> y(kTokens * rows);
            MatMul(m, x.data(), kTokens, y.data(), rows, *pool,
                   MatMulRounding{.batch_tokens = batch});
            for (int64_t t = 0; t < kTokens; ++t) {
              for (int64_t r = 0; r < rows; ++r) {
                const uint16_t* wr = w.data() + r * cols;
                const uint16_t* xr = xh.data() + t * cols;
                const float vec = (scalar.*c.decode).dot(wr, xr, cols);
                const float tb = (scalar.*c.batch).dot(wr, xr, cols);
                ASSERT_EQ((table.*c.batch).dot(wr, xr, cols), tb);
                ASSERT_EQ(y[t * rows + r], tiny_blas && t < batch ? tb : vec)
                    << TensorTypeName(c.type) << " rows=" << rows << " cols=" << cols
                    << " batch=" << batch << " t=" << t;
                orders_differ += vec != tb;
              }
            }
          }
        }
      }
    }
    EXPECT_GT(orders_differ, 100) << TensorTypeName(c.type);
  }
}

TEST_P(LevelTest, F16ConversionRows) {
  std::vector<float> x = testing::RandomVector(1000, 9, 100.0f);
  x[5] = 1e9f;
  x[6] = 1e-7f;
  std::vector<uint16_t> h(1000);
  ConvertF32ToF16Row(x.data(), h.data(), 1000);
  std::vector<float> back(1000);
  ConvertF16ToF32Row(h.data(), back.data(), 1000);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(h[i], F32ToF16(x[i])) << i;
    ASSERT_EQ(back[i], F16ToF32(h[i])) << i;
  }
}

// exp as llama.cpp's x86 vector code computes it: within 2 ulp of the true
// value, bit-identical on every level, and values pinned from
// ggml_vec_soft_max_f32 (libggml-cpu-zen4, node-llama-cpp 3.21.1), where
// it differs from std::exp.
TEST_P(LevelTest, ExpRowAndSiluMulRowFollowGgmlVectorExp) {
  const SimdLevel level = GetParam();
  std::vector<float> x = testing::RandomVector(1000 + 7, 21, 20.0f);
  x[0] = -200.0f;  // flushes to 0
  x[1] = 100.0f;   // overflows to inf
  x[2] = -90.0f;   // subnormal result
  x[3] = 0.0f;
  std::vector<float> e(x.size()), up = testing::RandomVector(x.size(), 22), y(x.size());
  ExpRow(x.data(), static_cast<int64_t>(x.size()), e.data());
  SiluMulRow(x.data(), up.data(), static_cast<int64_t>(x.size()), y.data());
  SetSimdLevel(SimdLevel::kScalar);
  std::vector<float> e_ref(x.size()), y_ref(x.size());
  ExpRow(x.data(), static_cast<int64_t>(x.size()), e_ref.data());
  SiluMulRow(x.data(), up.data(), static_cast<int64_t>(x.size()), y_ref.data());
  SetSimdLevel(level);
  EXPECT_EQ(e[0], 0.0f);
  EXPECT_TRUE(std::isinf(e[1]));
  EXPECT_EQ(e[3], 1.0f);
  int differs_from_libm = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(e[i], e_ref[i]) << i;
    ASSERT_EQ(y[i], y_ref[i]) << i;
    const double want = std::exp(static_cast<double>(x[i]));
    if (i >= 4 && want > 1e-30 && want < 1e30) {
      ASSERT_NEAR(e[i], want, 2.5 * want * 0x1p-23) << x[i];
    }
    if (i < x.size() - 7) differs_from_libm += e[i] != std::exp(x[i]);
    const float silu_tail = x[i] / (1.0f + std::exp(-x[i])) * up[i];
    if (i >= x.size() - 7) {  // 1007 % 16 = 15 tail elements use libm expf
      ASSERT_EQ(y[i], silu_tail) << i;
    }
  }
  EXPECT_GT(differs_from_libm, 50);
  // Pinned against ggml: exp(-1), exp(0.5), exp(-10.25) in a 16-float chunk.
  std::vector<float> v(16, 0.0f), ev(16);
  v[0] = -1.0f;
  v[1] = 0.5f;
  v[2] = -10.25f;
  ExpRow(v.data(), 16, ev.data());
  EXPECT_EQ(ev[0], 0x1.78b566p-2f);  // libm: 0x1.78b564p-2
  EXPECT_EQ(ev[1], 0x1.a61298p+0f);
  EXPECT_EQ(ev[2], 0x1.2899a6p-15f);  // libm: 0x1.2899a8p-15
}

INSTANTIATE_TEST_SUITE_P(AllLevels, LevelTest,
                         ::testing::Values(SimdLevel::kScalar, SimdLevel::kAvx2,
                                           SimdLevel::kAvx512),
                         LevelName);

TEST(CpuFeaturesTest, ReportsAndForcesLevels) {
  const SimdLevel saved = ActiveSimdLevel();
  const std::vector<SimdLevel> levels = SupportedSimdLevels();
  ASSERT_FALSE(levels.empty());
  EXPECT_EQ(levels.front(), SimdLevel::kScalar);
  EXPECT_EQ(levels.back(), DetectedSimdLevel());
  for (SimdLevel l : levels) {
    EXPECT_TRUE(SetSimdLevel(l));
    EXPECT_EQ(ActiveSimdLevel(), l);
  }
  SetSimdLevel(saved);
  EXPECT_EQ(SimdLevelName(SimdLevel::kAvx2), "avx2");
}

}  // namespace
}  // namespace phi3
