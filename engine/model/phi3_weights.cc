#include "engine/model/phi3_weights.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/kernels/quantize.h"

namespace phi3 {
namespace {

std::string ShapeString(const std::vector<int64_t>& dims) {
  return absl::StrCat("[", absl::StrJoin(dims, ", "), "]");
}

bool IsMatrixType(TensorType t) {
  switch (t) {
    case TensorType::kF32:
    case TensorType::kF16:
    case TensorType::kBF16:
    case TensorType::kQ8_0:
    case TensorType::kQ4_0:
    case TensorType::kQ4_1:
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K:
      return true;
    default:
      return false;
  }
}

class Loader {
 public:
  explicit Loader(const GgufFile& file) : file_(file) {}

  // nullptr (and OK) if absent and optional.
  absl::StatusOr<const GgufTensor*> Find(const std::string& name, std::vector<int64_t> shape,
                                         bool required) {
    const GgufTensor* t = file_.FindTensor(name);
    if (t == nullptr) {
      if (!required) return nullptr;
      return absl::InvalidArgumentError(absl::StrCat("phi3 model: missing tensor '", name,
                                                     "' (expected shape ", ShapeString(shape),
                                                     ")"));
    }
    if (t->dims != shape) {
      return absl::InvalidArgumentError(absl::StrCat("phi3 model: tensor '", name,
                                                     "' has shape ", ShapeString(t->dims),
                                                     ", expected ", ShapeString(shape)));
    }
    return t;
  }

  absl::StatusOr<WeightView> Matrix(const std::string& name, int64_t rows, int64_t cols,
                                    bool required = true) {
    absl::StatusOr<const GgufTensor*> t = Find(name, {cols, rows}, required);
    if (!t.ok()) return t.status();
    WeightView w;
    if (*t == nullptr) return w;
    if (!IsMatrixType((*t)->type)) {
      return absl::UnimplementedError(absl::StrCat("phi3 model: tensor '", name, "' has type ",
                                                   TensorTypeName((*t)->type),
                                                   ", not supported for weight matrices"));
    }
    w.type = (*t)->type;
    w.rows = rows;
    w.cols = cols;
    w.row_bytes = RowBytes(w.type, cols);
    w.data = (*t)->data;
    w.name = (*t)->name.c_str();
    return w;
  }

  absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t n, bool required,
                                            bool f32_only) {
    absl::StatusOr<const GgufTensor*> t = Find(name, {n}, required);
    if (!t.ok()) return t.status();
    std::vector<float> out;
    if (*t == nullptr) return out;
    const TensorType type = (*t)->type;
    const bool ok_type = type == TensorType::kF32 ||
                         (!f32_only && (type == TensorType::kF16 || type == TensorType::kBF16));
    if (!ok_type) {
      return absl::UnimplementedError(absl::StrCat("phi3 model: tensor '", name, "' has type ",
                                                   TensorTypeName(type), ", expected ",
                                                   f32_only ? "f32" : "f32, f16 or bf16"));
    }
    out.resize(n);
    DequantizeRow(type, (*t)->data, out.data(), n);
    return out;
  }

  absl::Status RefuseIfPresent(const std::string& name) {
    if (file_.FindTensor(name) != nullptr) {
      return absl::UnimplementedError(
          absl::StrCat("phi3 model: tensor '", name, "' is not supported by phi3serve"));
    }
    return absl::OkStatus();
  }

 private:
  const GgufFile& file_;
};

#define PHI3_ASSIGN_OR_RETURN(lhs, expr) \
  do {                                   \
    auto _r = (expr);                    \
    if (!_r.ok()) return _r.status();    \
    lhs = *std::move(_r);                \
  } while (0)

}  // namespace

absl::StatusOr<Phi3Weights> LoadPhi3Weights(const GgufFile& file, const Phi3Hparams& h) {
  Loader l(file);
  Phi3Weights w;
  const int64_t n_embd = h.embedding_length;
  const int64_t n_vocab = h.vocab_size;
  const int64_t n_ff = h.feed_forward_length;

  PHI3_ASSIGN_OR_RETURN(w.token_embd, l.Matrix("token_embd.weight", n_vocab, n_embd));
  PHI3_ASSIGN_OR_RETURN(w.output_norm, l.Vector("output_norm.weight", n_embd, true, false));
  PHI3_ASSIGN_OR_RETURN(w.output, l.Matrix("output.weight", n_vocab, n_embd, false));
  if (w.output.data == nullptr) w.output = w.token_embd;  // tied, as llama.cpp does
  for (const char* bias : {"output_norm.bias", "output.bias"}) {
    if (absl::Status s = l.RefuseIfPresent(bias); !s.ok()) return s;
  }

  PHI3_ASSIGN_OR_RETURN(w.rope_factors_long,
                        l.Vector("rope_factors_long.weight", h.rope_dims / 2, false, true));
  PHI3_ASSIGN_OR_RETURN(w.rope_factors_short,
                        l.Vector("rope_factors_short.weight", h.rope_dims / 2, false, true));

  w.layers.resize(h.num_layers);
  for (int i = 0; i < h.num_layers; ++i) {
    Phi3LayerWeights& L = w.layers[i];
    const std::string p = absl::StrCat("blk.", i, ".");
    PHI3_ASSIGN_OR_RETURN(L.attn_norm, l.Vector(p + "attn_norm.weight", n_embd, true, false));
    PHI3_ASSIGN_OR_RETURN(L.qkv, l.Matrix(p + "attn_qkv.weight", h.q_dim() + 2 * h.kv_dim(),
                                          n_embd, false));
    if (!L.fused_qkv()) {
      if (file.FindTensor(p + "attn_q.weight") == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "phi3 model: missing tensor '", p, "attn_qkv.weight' (expected shape [", n_embd,
            ", ", h.q_dim() + 2 * h.kv_dim(), "]) or separate '", p, "attn_q/k/v.weight'"));
      }
      PHI3_ASSIGN_OR_RETURN(L.q, l.Matrix(p + "attn_q.weight", h.q_dim(), n_embd));
      PHI3_ASSIGN_OR_RETURN(L.k, l.Matrix(p + "attn_k.weight", h.kv_dim(), n_embd));
      PHI3_ASSIGN_OR_RETURN(L.v, l.Matrix(p + "attn_v.weight", h.kv_dim(), n_embd));
    }
    PHI3_ASSIGN_OR_RETURN(L.attn_output, l.Matrix(p + "attn_output.weight", n_embd, h.q_dim()));
    PHI3_ASSIGN_OR_RETURN(L.ffn_norm, l.Vector(p + "ffn_norm.weight", n_embd, true, false));
    PHI3_ASSIGN_OR_RETURN(L.ffn_up, l.Matrix(p + "ffn_up.weight", 2 * n_ff, n_embd));
    PHI3_ASSIGN_OR_RETURN(L.ffn_down, l.Matrix(p + "ffn_down.weight", n_embd, n_ff));
    for (const char* bias : {"attn_qkv.bias", "attn_q.bias", "attn_k.bias", "attn_v.bias",
                             "attn_output.bias", "attn_norm.bias", "ffn_norm.bias",
                             "ffn_up.bias", "ffn_down.bias", "ffn_gate.weight",
                             "ffn_gate_inp.weight"}) {
      if (absl::Status s = l.RefuseIfPresent(p + bias); !s.ok()) return s;
    }
  }
  return w;
}

}  // namespace phi3
