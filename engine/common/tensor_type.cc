#include "engine/common/tensor_type.h"

#include <array>
#include <cassert>

namespace phi3 {
namespace {

// ggml's names by type id; empty for ids ggml has retired.
constexpr std::array<std::string_view, 41> kGgmlNames = {
    "f32",     "f16",    "q4_0",    "q4_1",   "",        "",       "q5_0",
    "q5_1",    "q8_0",   "q8_1",    "q2_K",   "q3_K",    "q4_K",   "q5_K",
    "q6_K",    "q8_K",   "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s",  "iq4_nl",
    "iq3_s",   "iq2_s",  "iq4_xs",  "i8",     "i16",     "i32",    "i64",
    "f64",     "iq1_m",  "bf16",    "",       "",        "",       "tq1_0",
    "tq2_0",   "",       "",        "",       "mxfp4",   "nvfp4",
};

}  // namespace

std::optional<TensorTypeTraits> GetTensorTypeTraits(uint32_t ggml_type) {
  switch (static_cast<TensorType>(ggml_type)) {
    case TensorType::kF32:  return TensorTypeTraits{"f32", 1, 4, true};
    case TensorType::kF16:  return TensorTypeTraits{"f16", 1, 2, true};
    case TensorType::kBF16: return TensorTypeTraits{"bf16", 1, 2, true};
    // d (f16) + 32 x 4-bit
    case TensorType::kQ4_0: return TensorTypeTraits{"q4_0", 32, 18, true};
    // d, m (f16) + 32 x 4-bit
    case TensorType::kQ4_1: return TensorTypeTraits{"q4_1", 32, 20, true};
    // d (f16) + 32 x int8
    case TensorType::kQ8_0: return TensorTypeTraits{"q8_0", 32, 34, true};
    // d, s (f16) + 32 x int8
    case TensorType::kQ8_1: return TensorTypeTraits{"q8_1", 32, 36, false};
    // d, dmin (f16) + 12 bytes of 6-bit scales/mins + 128 bytes of nibbles
    case TensorType::kQ4_K: return TensorTypeTraits{"q4_K", 256, 144, true};
    // q4_K + 32 bytes of high bits
    case TensorType::kQ5_K: return TensorTypeTraits{"q5_K", 256, 176, true};
    // 128 bytes low nibbles + 64 high 2-bits + 16 int8 scales + d (f16)
    case TensorType::kQ6_K: return TensorTypeTraits{"q6_K", 256, 210, true};
    // d (f32) + 256 x int8 + 16 x int16 block sums
    case TensorType::kQ8_K: return TensorTypeTraits{"q8_K", 256, 292, false};
  }
  return std::nullopt;
}

std::string TensorTypeName(uint32_t ggml_type) {
  if (ggml_type < kGgmlNames.size() && !kGgmlNames[ggml_type].empty()) {
    return std::string(kGgmlNames[ggml_type]);
  }
  return "type " + std::to_string(ggml_type);
}

int64_t RowBytes(TensorType type, int64_t elements) {
  const auto traits = GetTensorTypeTraits(type);
  assert(traits && elements % traits->block_elements == 0);
  return elements / traits->block_elements * traits->block_bytes;
}

}  // namespace phi3
