// Attention primitives: the SIMD kernels against the scalar ones (sizes 0..40,
// misaligned pointers), and AttendHead against a direct computation over a
// scattered block table, for f16 and q8_0 pools.
#include "engine/model/attention.h"

#include <cmath>
#include <random>
#include <vector>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/quantize.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

std::vector<float> Random(std::mt19937& rng, int n) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(AttentionKernelsTest, SimdMatchesScalar) {
  const AttentionKernels& scalar = GetScalarAttentionKernels();
  const AttentionKernels& active = GetAttentionKernels();
  std::mt19937 rng(7);
  for (int n = 0; n <= 40; ++n) {
    for (int offset = 0; offset < 3; ++offset) {
      std::vector<float> q = Random(rng, n + offset), y0 = Random(rng, n + offset);
      std::vector<uint16_t> k(n + offset);
      for (int i = 0; i < n + offset; ++i) k[i] = F32ToF16(q[(i * 7) % (n + offset)] * 0.5f);
      const float want = scalar.dot_f16(k.data() + offset, q.data() + offset, n);
      const float got = active.dot_f16(k.data() + offset, q.data() + offset, n);
      EXPECT_NEAR(got, want, 1e-5f * (1 + n)) << active.name << " n=" << n;
      std::vector<float> y1 = y0;
      scalar.axpy_f16(0.37f, k.data() + offset, y0.data() + offset, n);
      active.axpy_f16(0.37f, k.data() + offset, y1.data() + offset, n);
      for (int i = 0; i < n + offset; ++i) EXPECT_NEAR(y0[i], y1[i], 1e-6f) << "n=" << n;
    }
  }
}

// Softmax attention over positions [0, n_kv) computed directly from f32 K/V.
void Reference(const std::vector<float>& q, const std::vector<std::vector<float>>& k,
               const std::vector<std::vector<float>>& v, int head, int head_dim, int n_kv,
               std::vector<float>& out) {
  std::vector<double> s(n_kv);
  double mx = -1e300, sum = 0;
  for (int t = 0; t < n_kv; ++t) {
    double d = 0;
    for (int i = 0; i < head_dim; ++i) d += q[i] * k[t][head * head_dim + i];
    s[t] = d;
    mx = std::max(mx, d);
  }
  for (double& e : s) sum += (e = std::exp(e - mx));
  out.assign(head_dim, 0.0f);
  for (int t = 0; t < n_kv; ++t) {
    for (int i = 0; i < head_dim; ++i) out[i] += s[t] / sum * v[t][head * head_dim + i];
  }
}

void CheckAttendHead(KvCacheType type, float tolerance) {
  constexpr int kHeads = 2, kHeadDim = 64, kKvDim = kHeads * kHeadDim, kBlock = 4, kBlocks = 8;
  const int n_kv = 27;
  std::mt19937 rng(11);
  const int64_t token_bytes = KvTokenBytes(type, kKvDim);
  std::vector<uint8_t> k_pool(kBlocks * kBlock * token_bytes), v_pool(k_pool.size());
  const std::vector<int32_t> table = {5, 0, 7, 2, 6, 1, 3};
  std::vector<std::vector<float>> k(n_kv), v(n_kv);
  for (int t = 0; t < n_kv; ++t) {
    k[t] = Random(rng, kKvDim);
    v[t] = Random(rng, kKvDim);
    const int64_t slot = static_cast<int64_t>(table[t / kBlock]) * kBlock + t % kBlock;
    StoreKv(type, k[t].data(), v[t].data(), kKvDim, slot, token_bytes, k_pool.data(),
            v_pool.data());
  }
  KvLayerView view{type, k_pool.data(), v_pool.data(), kBlock, token_bytes};
  std::vector<float> q = Random(rng, kHeadDim);
  for (float& x : q) x *= 2.0f;
  std::vector<float> scores(n_kv), got(kHeadDim), want;
  for (int head = 0; head < kHeads; ++head) {
    AttendHead(GetAttentionKernels(), q.data(), view, table, head, kHeadDim, n_kv, scores.data(),
               got.data());
    Reference(q, k, v, head, kHeadDim, n_kv, want);
    for (int i = 0; i < kHeadDim; ++i) EXPECT_NEAR(got[i], want[i], tolerance) << i;
  }
}

TEST(AttendHeadTest, F16PoolMatchesDirectAttention) { CheckAttendHead(KvCacheType::kF16, 3e-3f); }
TEST(AttendHeadTest, Q8PoolMatchesDirectAttention) { CheckAttendHead(KvCacheType::kQ8_0, 3e-2f); }

}  // namespace
}  // namespace phi3
