// Read-only views of a Phi-3 model's weights inside a GgufFile's mapping.
// Large matrices are never copied; the small norm weights and rope factors
// are converted to f32 vectors (a few KB) at load time.
//
// Thread safety: immutable after LoadPhi3Weights. Views stay valid while the
// GgufFile lives.
#ifndef PHI3_ENGINE_MODEL_PHI3_WEIGHTS_H_
#define PHI3_ENGINE_MODEL_PHI3_WEIGHTS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/common/tensor_type.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/matmul.h"
#include "engine/model/phi3_hparams.h"

namespace phi3 {

// A row-major weight matrix in the file: rows x cols, each row row_bytes
// bytes of `type` (ggml's ne0 = cols, ne1 = rows). y = W x.
struct WeightView {
  TensorType type = TensorType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_bytes = 0;
  const uint8_t* data = nullptr;  // [rows][row_bytes], inside the mapping
  const char* name = "";          // the GGUF tensor name (owned by the GgufFile)
  // The repacked copy MatMul reads (layout kPacked16, owned by the
  // Phi3Model), or data == nullptr when the matrix is used as in the file.
  // When set, the file pages of `data` may have been released (madvise):
  // row() still works (the kernel re-reads them from the file) but is slow.
  WeightMatrix packed;

  const uint8_t* row(int64_t r) const { return data + r * row_bytes; }
  // The matrix MatMul should use: the packed copy when there is one.
  WeightMatrix matrix() const {
    if (packed.data != nullptr) return packed;
    return WeightMatrix{type, rows, cols, data, WeightLayout::kRowMajor};
  }
};

struct Phi3LayerWeights {
  std::vector<float> attn_norm;  // [n_embd]
  // Fused layout: qkv has q_dim + 2 * kv_dim rows (Q, then K, then V).
  // Split layout: q/k/v set and qkv.data == nullptr.
  WeightView qkv;
  WeightView q, k, v;
  WeightView attn_output;        // [n_embd rows][q_dim cols]
  std::vector<float> ffn_norm;   // [n_embd]
  WeightView ffn_up;             // [2 * n_ff rows][n_embd]: gate rows, then up rows
  WeightView ffn_down;           // [n_embd rows][n_ff cols]

  bool fused_qkv() const { return qkv.data != nullptr; }
};

struct Phi3Weights {
  WeightView token_embd;          // [n_vocab rows][n_embd]
  std::vector<Phi3LayerWeights> layers;
  std::vector<float> output_norm; // [n_embd]
  WeightView output;              // [n_vocab rows][n_embd]; token_embd if absent
  // LongRoPE frequency divisors, [rope_dims / 2] each; empty if absent.
  std::vector<float> rope_factors_long;
  std::vector<float> rope_factors_short;
};

// Finds and validates every tensor the phi3 graph uses: presence, shape
// (the error names the tensor, expected and actual shape), type (matrices:
// F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K; norms: F32/F16/BF16;
// rope factors: F32). Errors: InvalidArgument for missing/misshaped tensors,
// Unimplemented for unsupported types or tensors we do not compute (biases).
absl::StatusOr<Phi3Weights> LoadPhi3Weights(const GgufFile& file, const Phi3Hparams& hparams);

}  // namespace phi3

#endif  // PHI3_ENGINE_MODEL_PHI3_WEIGHTS_H_
