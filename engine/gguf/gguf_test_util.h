// Helpers for GGUF tests: small valid files and byte-level patching.
#ifndef PHI3_ENGINE_GGUF_GGUF_TEST_UTIL_H_
#define PHI3_ENGINE_GGUF_GGUF_TEST_UTIL_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "engine/gguf/gguf_writer.h"

namespace phi3::testing {

// A small valid GGUF (v3 unless `version`) with metadata of every value type
// (including a nested array) and tensors of f32 [8,3], f16 [16], q8_0 [64,2],
// q4_K [256,1] named "t.f32", "t.f16", "t.q8_0", "t.q4_K"; tensor bytes are a
// deterministic pattern.
std::string SmallGguf(uint32_t version = 3);

// Adds the same metadata and tensors as SmallGguf to `w`.
void AddSmallContents(GgufWriter& w);

// Offset in `bytes` of the tensor-info fields of tensor `name`:
// the n_dims field; dims follow, then the type (u32) and the offset (u64).
size_t TensorInfoOffset(const std::string& bytes, std::string_view name);

template <typename T>
void Poke(std::string& bytes, size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}
template <typename T>
T Peek(const std::string& bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

// A file with one f32 tensor "t" of `dims` declared with raw type `type`
// and `num_bytes` data bytes (no validation by the writer).
std::string RawTensorGguf(uint32_t type, std::vector<int64_t> dims, size_t num_bytes);

}  // namespace phi3::testing

#endif  // PHI3_ENGINE_GGUF_GGUF_TEST_UTIL_H_
