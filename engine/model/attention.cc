#include "engine/model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/dot.h"
#include "engine/kernels/quantize.h"
#include "engine/model/attention_kernels_internal.h"

namespace phi3 {
namespace {

float DotF16Scalar(const uint16_t* k, const float* q, int n) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += F16ToF32(k[i]) * q[i];
  return sum;
}

void AxpyF16Scalar(float a, const uint16_t* v, float* y, int n) {
  for (int i = 0; i < n; ++i) y[i] += a * F16ToF32(v[i]);
}

const AttentionKernels kScalar = {"scalar", DotF16Scalar, AxpyF16Scalar};


// q8_0 rows: one block per 32 values.
float DotQ8(const BlockQ8_0* k, const float* q, int n) {
  float sum = 0.0f;
  for (int b = 0; b < n / kQK8_0; ++b) {
    float s = 0.0f;
    for (int i = 0; i < kQK8_0; ++i) s += k[b].qs[i] * q[b * kQK8_0 + i];
    sum += s * F16ToF32(k[b].d);
  }
  return sum;
}

void AxpyQ8(float a, const BlockQ8_0* v, float* y, int n) {
  for (int b = 0; b < n / kQK8_0; ++b) {
    const float ad = a * F16ToF32(v[b].d);
    for (int i = 0; i < kQK8_0; ++i) y[b * kQK8_0 + i] += ad * v[b].qs[i];
  }
}

}  // namespace

const AttentionKernels& GetScalarAttentionKernels() { return kScalar; }

const AttentionKernels& GetAttentionKernels() {
  // Follows the kernels' level so PHI3_KERNELS=scalar also covers attention.
  // AVX-512 runs the AVX2 kernels: this path (AttendHead, the one-query
  // reference and the fallback for head_dim % 16 != 0) is not the hot one.
  return SelectBySimdLevel(ActiveSimdLevel(), &GetScalarAttentionKernels,
                           &internal::Avx2AttentionKernels, &internal::Avx2AttentionKernels);
}

int64_t KvTokenBytes(KvCacheType type, int kv_dim) {
  if (type == KvCacheType::kQ8_0) return static_cast<int64_t>(kv_dim / kQK8_0) * sizeof(BlockQ8_0);
  return static_cast<int64_t>(kv_dim) * 2;
}

void StoreKv(KvCacheType type, const float* k, const float* v, int kv_dim, int64_t slot,
             int64_t token_bytes, uint8_t* k_pool, uint8_t* v_pool) {
  uint8_t* kd = k_pool + slot * token_bytes;
  uint8_t* vd = v_pool + slot * token_bytes;
  if (type == KvCacheType::kQ8_0) {
    QuantizeRow(TensorType::kQ8_0, k, kd, kv_dim);
    QuantizeRow(TensorType::kQ8_0, v, vd, kv_dim);
    return;
  }
  ConvertF32ToF16Row(k, reinterpret_cast<uint16_t*>(kd), kv_dim);
  ConvertF32ToF16Row(v, reinterpret_cast<uint16_t*>(vd), kv_dim);
}

void AttendHead(const AttentionKernels& kernels, const float* q, const KvLayerView& kv,
                std::span<const int32_t> block_table, int kv_head, int head_dim, int n_kv,
                float* scores, float* out) {
  const int bs = kv.block_size;
  const bool q8 = kv.type == KvCacheType::kQ8_0;
  const int64_t head_offset =
      q8 ? static_cast<int64_t>(kv_head) * (head_dim / kQK8_0) * sizeof(BlockQ8_0)
         : static_cast<int64_t>(kv_head) * head_dim * 2;
  auto slot_bytes = [&](int t) {
    return (static_cast<int64_t>(block_table[t / bs]) * bs + t % bs) * kv.token_bytes +
           head_offset;
  };

  float max_score = -std::numeric_limits<float>::infinity();
  for (int t = 0; t < n_kv; ++t) {
    const uint8_t* k = kv.k + slot_bytes(t);
    const float s = q8 ? DotQ8(reinterpret_cast<const BlockQ8_0*>(k), q, head_dim)
                       : kernels.dot_f16(reinterpret_cast<const uint16_t*>(k), q, head_dim);
    scores[t] = s;
    max_score = std::max(max_score, s);
  }
  double sum = 0.0;
  for (int t = 0; t < n_kv; ++t) {
    const float e = std::exp(scores[t] - max_score);
    scores[t] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  std::fill(out, out + head_dim, 0.0f);
  for (int t = 0; t < n_kv; ++t) {
    // ggml multiplies V by the probabilities converted to f16.
    const float p = F16ToF32(F32ToF16(scores[t] * inv));
    if (p == 0.0f) continue;
    const uint8_t* v = kv.v + slot_bytes(t);
    if (q8) {
      AxpyQ8(p, reinterpret_cast<const BlockQ8_0*>(v), out, head_dim);
    } else {
      kernels.axpy_f16(p, reinterpret_cast<const uint16_t*>(v), out, head_dim);
    }
  }
}

}  // namespace phi3
