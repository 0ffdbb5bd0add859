#include "engine/model/phi3_hparams.h"

#include <cmath>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace phi3 {
namespace {

// Fetches a required unsigned key as an int in [min_value, max_value].
absl::StatusOr<int> RequiredInt(const GgufFile& file, const std::string& key, int min_value,
                                int max_value) {
  if (!file.Has(key)) {
    return absl::InvalidArgumentError(absl::StrCat("phi3 model: missing required key '", key, "'"));
  }
  absl::StatusOr<uint32_t> v = file.GetUint32(key);
  if (!v.ok()) return v.status();
  if (*v < static_cast<uint32_t>(min_value) || *v > static_cast<uint32_t>(max_value)) {
    return absl::InvalidArgumentError(absl::StrCat("phi3 model: key '", key, "' = ", *v,
                                                   ", expected a value in [", min_value, ", ",
                                                   max_value, "]"));
  }
  return static_cast<int>(*v);
}

absl::StatusOr<std::optional<int>> OptionalInt(const GgufFile& file, const std::string& key,
                                               int min_value, int max_value) {
  if (!file.Has(key)) return std::optional<int>();
  absl::StatusOr<int> v = RequiredInt(file, key, min_value, max_value);
  if (!v.ok()) return v.status();
  return std::optional<int>(*v);
}

absl::StatusOr<float> OptionalFloat(const GgufFile& file, const std::string& key,
                                    float default_value) {
  absl::StatusOr<std::optional<float>> v = file.GetOptionalFloat32(key);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return default_value;
  if (!std::isfinite(**v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("phi3 model: key '", key, "' is not finite (", **v, ")"));
  }
  return **v;
}

}  // namespace

absl::StatusOr<Phi3Hparams> ReadPhi3Hparams(const GgufFile& file) {
  constexpr int kMaxDim = 1 << 20;
  Phi3Hparams h;

  absl::StatusOr<std::optional<std::string>> arch = file.GetOptionalString("general.architecture");
  if (!arch.ok()) return arch.status();
  if (!arch->has_value()) {
    return absl::InvalidArgumentError(
        "phi3 model: missing required key 'general.architecture' (expected \"phi3\")");
  }
  if (**arch != "phi3") {
    return absl::InvalidArgumentError(absl::StrCat(
        "phi3 model: general.architecture is \"", **arch, "\", expected \"phi3\""));
  }
  absl::StatusOr<std::optional<std::string>> name = file.GetOptionalString("general.name");
  if (!name.ok()) return name.status();
  h.name = name->value_or("");

  absl::StatusOr<int> v = RequiredInt(file, "phi3.context_length", 1, 1 << 24);
  if (!v.ok()) return v.status();
  h.context_length = *v;
  if (v = RequiredInt(file, "phi3.embedding_length", 1, kMaxDim); !v.ok()) return v.status();
  h.embedding_length = *v;
  if (v = RequiredInt(file, "phi3.feed_forward_length", 1, kMaxDim); !v.ok()) return v.status();
  h.feed_forward_length = *v;
  if (v = RequiredInt(file, "phi3.block_count", 1, 4096); !v.ok()) return v.status();
  h.num_layers = *v;
  if (v = RequiredInt(file, "phi3.attention.head_count", 1, 4096); !v.ok()) return v.status();
  h.num_heads = *v;

  absl::StatusOr<std::optional<int>> o =
      OptionalInt(file, "phi3.attention.head_count_kv", 1, 4096);
  if (!o.ok()) return o.status();
  h.num_kv_heads = o->value_or(h.num_heads);
  if (h.num_heads % h.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "phi3 model: phi3.attention.head_count (", h.num_heads,
        ") is not a multiple of phi3.attention.head_count_kv (", h.num_kv_heads, ")"));
  }
  if (h.embedding_length % h.num_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "phi3 model: phi3.embedding_length (", h.embedding_length,
        ") is not divisible by phi3.attention.head_count (", h.num_heads, ")"));
  }
  h.head_dim = h.embedding_length / h.num_heads;
  for (const char* key : {"phi3.attention.key_length", "phi3.attention.value_length"}) {
    if (o = OptionalInt(file, key, 1, kMaxDim); !o.ok()) return o.status();
    if (o->has_value() && **o != h.head_dim) {
      return absl::UnimplementedError(absl::StrCat("phi3 model: key '", key, "' = ", **o,
                                                   ", only embedding_length / head_count = ",
                                                   h.head_dim, " is supported"));
    }
  }
  if (o = OptionalInt(file, "phi3.rope.dimension_count", 2, kMaxDim); !o.ok()) return o.status();
  h.rope_dims = o->value_or(h.head_dim);
  if (h.rope_dims > h.head_dim || h.rope_dims % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("phi3 model: phi3.rope.dimension_count = ", h.rope_dims,
                     ", expected an even value <= head dim ", h.head_dim));
  }

  if (!file.Has("phi3.attention.layer_norm_rms_epsilon")) {
    return absl::InvalidArgumentError(
        "phi3 model: missing required key 'phi3.attention.layer_norm_rms_epsilon'");
  }
  absl::StatusOr<float> f = file.GetFloat32("phi3.attention.layer_norm_rms_epsilon");
  if (!f.ok()) return f.status();
  if (!(*f >= 0.0f) || !std::isfinite(*f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "phi3 model: phi3.attention.layer_norm_rms_epsilon = ", *f, ", expected >= 0"));
  }
  h.rms_norm_eps = *f;

  if (f = OptionalFloat(file, "phi3.rope.freq_base", 10000.0f); !f.ok()) return f.status();
  if (*f <= 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("phi3 model: phi3.rope.freq_base = ", *f, ", expected > 0"));
  }
  h.rope_freq_base = *f;

  absl::StatusOr<std::optional<std::string>> scaling =
      file.GetOptionalString("phi3.rope.scaling.type");
  if (!scaling.ok()) return scaling.status();
  const std::string scaling_type = scaling->value_or("linear");
  if (scaling_type == "yarn") {
    return absl::UnimplementedError(
        "phi3 model: phi3.rope.scaling.type \"yarn\" is not supported "
        "(supported: none, linear, longrope)");
  }
  if (scaling_type != "none" && scaling_type != "linear" && scaling_type != "longrope") {
    return absl::InvalidArgumentError(absl::StrCat("phi3 model: phi3.rope.scaling.type \"",
                                                   scaling_type,
                                                   "\" is unknown (expected none, linear, "
                                                   "longrope or yarn)"));
  }
  float factor = 0.0f;
  const char* factor_key =
      file.Has("phi3.rope.scaling.factor") ? "phi3.rope.scaling.factor" : "phi3.rope.scale_linear";
  if (f = OptionalFloat(file, factor_key, 0.0f); !f.ok()) return f.status();
  factor = *f;
  if (factor < 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("phi3 model: ", factor_key, " = ", factor, ", expected >= 0"));
  }
  h.rope_freq_scale = (factor == 0.0f || scaling_type == "none") ? 1.0f : 1.0f / factor;

  if (f = OptionalFloat(file, "phi3.rope.scaling.attn_factor", 1.0f); !f.ok()) return f.status();
  h.rope_attn_factor = *f;

  if (o = OptionalInt(file, "phi3.rope.scaling.original_context_length", 1, 1 << 24); !o.ok()) {
    return o.status();
  }
  h.original_context_length = o->value_or(h.context_length);

  if (o = OptionalInt(file, "phi3.attention.sliding_window", 0, 1 << 24); !o.ok()) {
    return o.status();
  }
  h.sliding_window = o->value_or(0);

  const GgufTensor* embd = file.FindTensor("token_embd.weight");
  if (embd == nullptr) {
    return absl::InvalidArgumentError("phi3 model: missing tensor 'token_embd.weight'");
  }
  if (embd->dims.size() != 2 || embd->dims[0] != h.embedding_length) {
    std::string dims;
    for (int64_t d : embd->dims) absl::StrAppend(&dims, dims.empty() ? "" : ", ", d);
    return absl::InvalidArgumentError(absl::StrCat(
        "phi3 model: tensor 'token_embd.weight' has shape [", dims, "], expected [",
        h.embedding_length, ", n_vocab]"));
  }
  if (embd->dims[1] > (1 << 24)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "phi3 model: tensor 'token_embd.weight' has ", embd->dims[1], " rows, too many"));
  }
  h.vocab_size = static_cast<int>(embd->dims[1]);
  if (const GgufValue* tokens = file.Find("tokenizer.ggml.tokens");
      tokens != nullptr && tokens->type() == GgufValueType::kArray &&
      static_cast<int64_t>(tokens->array().size()) != h.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "phi3 model: tokenizer.ggml.tokens has ", tokens->array().size(),
        " entries but token_embd.weight has ", h.vocab_size, " rows (must be equal)"));
  }
  return h;
}

}  // namespace phi3
