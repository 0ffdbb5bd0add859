// Generates Phi-3 GGUF files with random weights and the real Phi-3
// vocabulary, as llama.cpp's converter (conversion/phi.py Phi3MiniModel) and
// llama-quantize would write them: same keys, tensor names, shapes and
// per-tensor types. Used by the phi3-mkmodel tool and by tests that need a
// model file.
//
// Weights: every matrix element is a deterministic function of (seed, tensor,
// row, column), independent of the output type and the thread count, so
// files of different types made with one seed hold the same model up to
// rounding, and --split-qkv files compute exactly what fused files do
// (attn_q/k/v are the row ranges of the fused attn_qkv).
//
// Thread safety: WritePhi3Model may be called concurrently for different paths.
#ifndef PHI3_ENGINE_TOOLS_MKMODEL_PHI3_MODEL_WRITER_H_
#define PHI3_ENGINE_TOOLS_MKMODEL_PHI3_MODEL_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/common/progress.h"
#include "engine/common/tensor_type.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/tokenizer/vocab_data.h"

namespace phi3 {

struct Phi3Dims {
  int64_t n_vocab = kPhi3VocabRows;
  int64_t n_embd = 3072;
  int64_t n_ff = 8192;
  int64_t n_layer = 32;
  int64_t n_head = 32;
  int64_t n_head_kv = 32;
  int64_t n_ctx = 4096;       // phi3.context_length
  int64_t n_ctx_orig = 4096;  // phi3.rope.scaling.original_context_length
  int64_t sliding_window = 2047;
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  bool long_rope = false;  // 128k: rope_factors_long/short + attn_factor key

  int64_t head_dim() const { return n_embd / n_head; }
};

// "tiny": n_embd 256, n_ff 512, 2 layers, 8 heads (head_dim 32), ctx 4096:
//         every row length is a multiple of 256, so every type works.
// "phi3-mini": Phi-3-mini-4k (3072/8192/32 layers/32 heads, ctx 4096, SWA 2047).
// "phi3-mini-128k": as phi3-mini with ctx 131072 (original 4096), LongRoPE.
absl::StatusOr<Phi3Dims> Phi3PresetDims(std::string_view preset);

// What --type asks for. Single types are "pure": every 2-D weight (token_embd
// and output included) has that type. kQ4_K_M is llama-quantize's Q4_K_M mix.
// 1-D tensors (norms, rope factors) are always f32, as llama.cpp writes them.
enum class WeightFormat { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_1, kQ4_K, kQ5_K, kQ6_K, kQ4_K_M };
absl::StatusOr<WeightFormat> ParseWeightFormat(std::string_view name);  // "q4_k_m", "f16", ...
std::string WeightFormatName(WeightFormat format);
// llama.cpp's general.file_type (LLAMA_FTYPE_*) for the format.
uint32_t WeightFormatFileType(WeightFormat format);

struct Phi3ModelOptions {
  Phi3Dims dims;
  WeightFormat format = WeightFormat::kF32;
  uint64_t seed = 1;
  bool split_qkv = false;
  AddedTokenKind added_token_kind = AddedTokenKind::kControl;
  std::string name = "Phi-3-mini-4k-instruct (phi3serve random weights)";  // general.name
  // Standard deviation of the output head's logits for a unit-RMS hidden
  // state; larger separates greedy choices more (see the .cc).
  float logit_std = 4.0f;
  // Output rows are scaled by exp(output_row_spread * z), z ~ N(0, 1): a
  // heavier upper tail of the logits, so top-1/top-2 gaps grow relative to
  // numeric noise.
  float output_row_spread = 0.5f;
  int num_threads = 0;  // 0: hardware concurrency (at most 8)
  // Reports phase "writing" (bytes of tensor data written), on the caller's thread.
  ProgressCallback progress = nullptr;
};

// One tensor of the file. Weights come from the stream of `source` (a
// tensor name) starting at row `source_row`.
struct Phi3TensorPlan {
  std::string name;
  TensorType type;
  std::vector<int64_t> dims;  // ggml order: {row length, rows}
  std::string source;
  int64_t source_row = 0;
};

// Checks dims (heads divide n_embd, even head_dim, rows of K-quant types a
// multiple of 256, ...) and lists the tensors with their types.
// InvalidArgument naming the offending dim otherwise.
absl::StatusOr<std::vector<Phi3TensorPlan>> PlanPhi3Tensors(const Phi3ModelOptions& options);

// Adds every metadata key (general.*, phi3.*, tokenizer.*) to `writer`.
absl::Status AddPhi3Metadata(const Phi3ModelOptions& options, GgufWriter& writer);

// Writes the whole model to `path` (streamed; memory stays O(threads x rows)).
absl::Status WritePhi3Model(const Phi3ModelOptions& options, const std::string& path);

// The 48 LongRoPE factors of Phi-3-mini-128k-instruct's config, resampled to
// head_dim / 2 entries when head_dim != 96.
std::vector<float> Phi3LongRopeFactors(int64_t head_dim);
std::vector<float> Phi3ShortRopeFactors(int64_t head_dim);

}  // namespace phi3

#endif  // PHI3_ENGINE_TOOLS_MKMODEL_PHI3_MODEL_WRITER_H_
