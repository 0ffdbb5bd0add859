// Tensor element types as numbered by ggml (the values are stored in GGUF files).
//
// Only the types phi3serve loads are named here; every other ggml type id is
// "unsupported" and is refused at load time by name (see TensorTypeName).
#ifndef PHI3_ENGINE_COMMON_TENSOR_TYPE_H_
#define PHI3_ENGINE_COMMON_TENSOR_TYPE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace phi3 {

enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 8,
  kQ8_1 = 9,   // activations only (dot with Q4_1)
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,  // activations only (dot with K-quants)
  kBF16 = 30,
};

struct TensorTypeTraits {
  std::string_view name;       // ggml's name, e.g. "q4_K"
  int64_t block_elements;      // elements per block (1 for float types)
  int64_t block_bytes;         // bytes per block
  bool weight_type;            // may appear in a model file we load
};

// Traits of a supported type, or nullopt for any other ggml type id.
std::optional<TensorTypeTraits> GetTensorTypeTraits(uint32_t ggml_type);
inline std::optional<TensorTypeTraits> GetTensorTypeTraits(TensorType t) {
  return GetTensorTypeTraits(static_cast<uint32_t>(t));
}

// ggml's name for any type id, including the ones we refuse (e.g. "iq2_xxs"),
// or "type N" for ids ggml does not define.
std::string TensorTypeName(uint32_t ggml_type);
inline std::string TensorTypeName(TensorType t) {
  return TensorTypeName(static_cast<uint32_t>(t));
}

// Bytes of one row of `elements` values of a supported type.
// REQUIRES: elements is a multiple of the type's block_elements.
int64_t RowBytes(TensorType type, int64_t elements);

}  // namespace phi3

#endif  // PHI3_ENGINE_COMMON_TENSOR_TYPE_H_
