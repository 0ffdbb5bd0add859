// Phi-3 presets, tensor plan and metadata (what llama.cpp's converter and
// llama-quantize write for Phi-3-mini).
#include <array>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engine/tools/mkmodel/phi3_model_writer.h"

namespace phi3 {
namespace {

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Phi-3-mini-128k-instruct config.json rope_scaling (type "longrope").
constexpr std::array<float, 48> kShortFactors = {
    1.05f, 1.05f, 1.05f, 1.1f,  1.1f,  1.15f, 1.2f,  1.25f, 1.3f,  1.35f, 1.5f,  2.0f,
    2.0f,  2.0f,  2.0f,  2.0f,  2.0f,  2.0f,  2.0f,  2.0f,  2.0f,  2.0f,  2.0f,  2.0f,
    2.0f,  2.0f,  2.0f,  2.0f,  2.0f,  2.0f,  2.0f,  2.0f,  2.05f, 2.05f, 2.05f, 2.1f,
    2.1f,  2.1f,  2.15f, 2.15f, 2.35f, 2.55f, 2.6f,  2.6f,  2.75f, 2.85f, 2.85f, 2.95f};
constexpr std::array<float, 48> kLongFactors = {
    1.08f,  1.11f,  1.14f,  1.34f,  1.59f,  1.6f,   1.62f,  2.62f,  3.23f,  3.23f,
    4.79f,  7.4f,   7.7f,   9.09f,  12.2f,  17.67f, 24.46f, 28.57f, 30.42f, 30.84f,
    32.59f, 32.93f, 42.32f, 44.96f, 50.34f, 50.45f, 57.55f, 57.93f, 58.21f, 60.14f,
    62.61f, 62.62f, 62.71f, 63.14f, 63.14f, 63.77f, 63.93f, 63.96f, 63.97f, 64.03f,
    64.07f, 64.08f, 64.12f, 64.41f, 64.48f, 64.51f, 64.53f, 64.84f};

std::vector<float> Resample(const std::array<float, 48>& f, int64_t head_dim) {
  const int64_t n = std::max<int64_t>(1, head_dim / 2);
  std::vector<float> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = f[i * 48 / n];
  return out;
}

// HF tokenizer_config.json "chat_template" of Phi-3-mini-4k/128k-instruct.
constexpr const char* kChatTemplate =
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + "
    "message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + "
    "message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

// llama-quantize's use_more_bits (layers that get more bits in *_M mixes).
bool UseMoreBits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

TensorType BaseType(WeightFormat f) {
  switch (f) {
    case WeightFormat::kF32: return TensorType::kF32;
    case WeightFormat::kF16: return TensorType::kF16;
    case WeightFormat::kBF16: return TensorType::kBF16;
    case WeightFormat::kQ8_0: return TensorType::kQ8_0;
    case WeightFormat::kQ4_0: return TensorType::kQ4_0;
    case WeightFormat::kQ4_1: return TensorType::kQ4_1;
    case WeightFormat::kQ4_K:
    case WeightFormat::kQ4_K_M: return TensorType::kQ4_K;
    case WeightFormat::kQ5_K: return TensorType::kQ5_K;
    case WeightFormat::kQ6_K: return TensorType::kQ6_K;
  }
  return TensorType::kF32;
}

struct FormatInfo {
  WeightFormat format;
  const char* name;
  uint32_t file_type;
};
constexpr FormatInfo kFormats[] = {
    {WeightFormat::kF32, "f32", 0},      {WeightFormat::kF16, "f16", 1},
    {WeightFormat::kBF16, "bf16", 32},   {WeightFormat::kQ8_0, "q8_0", 7},
    {WeightFormat::kQ4_0, "q4_0", 2},    {WeightFormat::kQ4_1, "q4_1", 3},
    {WeightFormat::kQ4_K, "q4_k", 14},   {WeightFormat::kQ5_K, "q5_k", 16},
    {WeightFormat::kQ6_K, "q6_k", 18},   {WeightFormat::kQ4_K_M, "q4_k_m", 15},
};

}  // namespace

std::vector<float> Phi3LongRopeFactors(int64_t head_dim) { return Resample(kLongFactors, head_dim); }
std::vector<float> Phi3ShortRopeFactors(int64_t head_dim) {
  return Resample(kShortFactors, head_dim);
}

absl::StatusOr<Phi3Dims> Phi3PresetDims(std::string_view preset) {
  Phi3Dims d;
  if (preset == "phi3-mini") return d;
  if (preset == "phi3-mini-128k") {
    d.n_ctx = 131072;
    d.sliding_window = 262144;
    d.long_rope = true;
    return d;
  }
  if (preset == "tiny") {
    d.n_embd = 256;
    d.n_ff = 512;
    d.n_layer = 2;
    d.n_head = 8;
    d.n_head_kv = 8;
    return d;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown preset \"", AV(preset), "\"; expected tiny, phi3-mini or phi3-mini-128k"));
}

absl::StatusOr<WeightFormat> ParseWeightFormat(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(AV(name));
  for (const FormatInfo& f : kFormats) {
    if (lower == f.name) return f.format;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown --type \"", AV(name),
      "\"; expected f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k or q4_k_m"));
}

std::string WeightFormatName(WeightFormat format) {
  for (const FormatInfo& f : kFormats) {
    if (f.format == format) return f.name;
  }
  return "?";
}

uint32_t WeightFormatFileType(WeightFormat format) {
  for (const FormatInfo& f : kFormats) {
    if (f.format == format) return f.file_type;
  }
  return 0;
}

absl::StatusOr<std::vector<Phi3TensorPlan>> PlanPhi3Tensors(const Phi3ModelOptions& options) {
  const Phi3Dims& d = options.dims;
  auto positive = [](const char* what, int64_t v) -> absl::Status {
    if (v < 1 || v > (int64_t{1} << 24)) {
      return absl::InvalidArgumentError(absl::StrCat(what, " = ", v, " is out of range"));
    }
    return absl::OkStatus();
  };
  for (auto [what, v] : {std::pair<const char*, int64_t>{"n_vocab", d.n_vocab},
                         {"n_embd", d.n_embd}, {"n_ff", d.n_ff}, {"n_layer", d.n_layer},
                         {"n_head", d.n_head}, {"n_head_kv", d.n_head_kv}, {"n_ctx", d.n_ctx},
                         {"n_ctx_orig", d.n_ctx_orig}}) {
    if (auto s = positive(what, v); !s.ok()) return s;
  }
  if (d.n_embd % d.n_head != 0 || d.head_dim() % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("n_embd ", d.n_embd, " must be n_head (",
                                                   d.n_head, ") x an even head_dim"));
  }
  if (d.n_head % d.n_head_kv != 0) {
    return absl::InvalidArgumentError(absl::StrCat("n_head ", d.n_head,
                                                   " must be a multiple of n_head_kv ", d.n_head_kv));
  }
  const int64_t n_embd_kv = d.head_dim() * d.n_head_kv;
  const WeightFormat f = options.format;
  const TensorType base = BaseType(f);
  const int64_t block = GetTensorTypeTraits(base)->block_elements;
  for (auto [what, v] : {std::pair<const char*, int64_t>{"n_embd", d.n_embd}, {"n_ff", d.n_ff}}) {
    if (v % block != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " = ", v, " is not a multiple of ", block, ", the block size of --type ",
          WeightFormatName(f), " (llama.cpp would fall back to a type phi3serve does not load)"));
    }
  }
  const bool mix = f == WeightFormat::kQ4_K_M;
  std::vector<Phi3TensorPlan> plan;
  auto add = [&](std::string name, TensorType type, std::vector<int64_t> dims,
                 std::string source = "", int64_t source_row = 0) {
    if (source.empty()) source = name;
    plan.push_back({std::move(name), type, std::move(dims), std::move(source), source_row});
  };
  add("token_embd.weight", base, {d.n_embd, d.n_vocab});
  if (d.long_rope) {
    add("rope_factors_long.weight", TensorType::kF32, {d.head_dim() / 2});
    add("rope_factors_short.weight", TensorType::kF32, {d.head_dim() / 2});
  }
  for (int64_t i = 0; i < d.n_layer; ++i) {
    const std::string blk = absl::StrCat("blk.", i, ".");
    add(blk + "attn_norm.weight", TensorType::kF32, {d.n_embd});
    const std::string qkv = blk + "attn_qkv.weight";
    if (options.split_qkv) {
      // llama-quantize counts attn_v tensors: layer i is the i-th.
      const TensorType v_type = mix && UseMoreBits(i, d.n_layer) ? TensorType::kQ6_K : base;
      add(blk + "attn_q.weight", base, {d.n_embd, d.n_embd}, qkv, 0);
      add(blk + "attn_k.weight", base, {d.n_embd, n_embd_kv}, qkv, d.n_embd);
      add(blk + "attn_v.weight", v_type, {d.n_embd, n_embd_kv}, qkv, d.n_embd + n_embd_kv);
    } else {
      add(qkv, mix ? TensorType::kQ5_K : base, {d.n_embd, d.n_embd + 2 * n_embd_kv});
    }
    add(blk + "attn_output.weight", base, {d.n_embd, d.n_embd});
    add(blk + "ffn_norm.weight", TensorType::kF32, {d.n_embd});
    add(blk + "ffn_up.weight", base, {d.n_embd, 2 * d.n_ff});
    add(blk + "ffn_down.weight", mix && UseMoreBits(i, d.n_layer) ? TensorType::kQ6_K : base,
        {d.n_ff, d.n_embd});
  }
  add("output_norm.weight", TensorType::kF32, {d.n_embd});
  add("output.weight", mix ? TensorType::kQ6_K : base, {d.n_embd, d.n_vocab});
  return plan;
}

absl::Status AddPhi3Metadata(const Phi3ModelOptions& options, GgufWriter& w) {
  const Phi3Dims& d = options.dims;
  const uint32_t kQuantVersion = 2;  // GGML_QNT_VERSION
  absl::Status s = w.AddString("general.architecture", "phi3");
  auto ok = [&](absl::Status next) {
    if (s.ok()) s = std::move(next);
  };
  ok(w.AddString("general.type", "model"));
  ok(w.AddString("general.name", options.name));
  ok(w.AddString("general.finetune", "instruct"));
  ok(w.AddString("general.basename", "Phi-3"));
  ok(w.AddString("general.license", "mit"));
  ok(w.AddUint32("phi3.context_length", static_cast<uint32_t>(d.n_ctx)));
  ok(w.AddUint32("phi3.rope.scaling.original_context_length", static_cast<uint32_t>(d.n_ctx_orig)));
  ok(w.AddUint32("phi3.embedding_length", static_cast<uint32_t>(d.n_embd)));
  ok(w.AddUint32("phi3.feed_forward_length", static_cast<uint32_t>(d.n_ff)));
  ok(w.AddUint32("phi3.block_count", static_cast<uint32_t>(d.n_layer)));
  ok(w.AddUint32("phi3.attention.head_count", static_cast<uint32_t>(d.n_head)));
  ok(w.AddUint32("phi3.attention.head_count_kv", static_cast<uint32_t>(d.n_head_kv)));
  ok(w.AddFloat32("phi3.attention.layer_norm_rms_epsilon", d.rms_eps));
  ok(w.AddUint32("phi3.rope.dimension_count", static_cast<uint32_t>(d.head_dim())));
  ok(w.AddFloat32("phi3.rope.freq_base", d.rope_freq_base));
  ok(w.AddUint32("general.file_type", WeightFormatFileType(options.format)));
  ok(w.AddUint32("phi3.attention.sliding_window", static_cast<uint32_t>(d.sliding_window)));
  if (d.long_rope && d.n_ctx > d.n_ctx_orig) {
    // conversion/phi.py: longrope attention factor sqrt(1 + ln(scale) / ln(orig)).
    const double scale = static_cast<double>(d.n_ctx) / static_cast<double>(d.n_ctx_orig);
    ok(w.AddFloat32("phi3.rope.scaling.attn_factor",
                    static_cast<float>(std::sqrt(1.0 + std::log(scale) / std::log(
                                                                static_cast<double>(d.n_ctx_orig))))));
  }
  if (s.ok()) s = AddVocabToGguf(Phi3Vocab(options.added_token_kind), w);
  ok(w.AddString("tokenizer.chat_template", kChatTemplate));
  ok(w.AddUint32("general.quantization_version", kQuantVersion));
  return s;
}

}  // namespace phi3
