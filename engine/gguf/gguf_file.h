// Read-only view of a GGUF file (v2 or v3): metadata and tensor views over
// an mmap of the file, without copying tensor data.
//
// Open validates everything before returning: header, every key/value,
// every tensor's name, type, shape, byte size, offset, alignment and overlap.
// A successful Open means every GgufTensor::data points to num_bytes bytes
// inside the mapping. Errors never crash and never read outside the file:
//   NotFound         the file does not exist
//   DataLoss         corrupt or truncated file (bad magic, absurd counts,
//                    offsets past the end, overlapping/misaligned tensors, ...)
//   Unimplemented    GGUF v1 or a version > 3; a tensor type phi3serve does
//                    not load (named, e.g. "iq2_xxs")
//   InvalidArgument  the path is not a regular file; a getter asked for a key
//                    with a different type (or a value that does not fit)
//   PermissionDenied the file cannot be read; ResourceExhausted: mmap failed
// Limits (DataLoss beyond): 2^23 metadata array elements in all, 2^20
// tensors, tensor names of 1..63 bytes (ggml's), arrays nested 8 deep.
// Architecture-level checks (phi3 keys, tensor shapes) live in engine/model.
//
// Thread safety: immutable after Open; all const methods may be called
// concurrently. Tensor data pointers stay valid while the GgufFile lives.
#ifndef PHI3_ENGINE_GGUF_GGUF_FILE_H_
#define PHI3_ENGINE_GGUF_GGUF_FILE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/common/tensor_type.h"
#include "engine/gguf/gguf_value.h"

namespace phi3 {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr uint64_t kGgufDefaultAlignment = 32;
inline constexpr int kGgufMaxDims = 4;

struct GgufTensor {
  std::string name;
  TensorType type;
  // ggml order: dims[0] is the row length (contiguous), dims[1] the number
  // of rows, ... 1 <= dims.size() <= 4, every dim >= 1.
  std::vector<int64_t> dims;
  int64_t num_elements = 0;
  // Offset of the data relative to data_offset(); a multiple of alignment().
  uint64_t offset = 0;
  // Points into the mapping; num_bytes = RowBytes(type, dims[0]) * rows.
  const uint8_t* data = nullptr;
  uint64_t num_bytes = 0;

  int64_t num_rows() const { return num_elements / dims[0]; }
};

class GgufFile {
 public:
  // mmaps `path` read-only and validates it.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Validates a copy of `bytes` (kept in an aligned buffer owned by the
  // result). For tests and fuzzing.
  static absl::StatusOr<std::unique_ptr<GgufFile>> OpenBuffer(std::string_view bytes);

  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  // Start of the tensor data section (aligned), in bytes from file start.
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return size_; }
  // "<path>" or "<buffer>", for messages.
  const std::string& source() const { return source_; }

  // ---- Metadata. Keys are unique (Open refuses duplicates).
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kvs_; }
  bool Has(std::string_view key) const;
  // nullptr if absent.
  const GgufValue* Find(std::string_view key) const;

  // Typed getters: NotFound if the key is absent; InvalidArgument naming the
  // key, the expected and the actual type (or the out-of-range value)
  // otherwise. Integer getters accept any integer type whose value fits.
  // GetFloat32/64 accept f32 and f64.
  absl::StatusOr<uint32_t> GetUint32(std::string_view key) const;
  absl::StatusOr<int32_t> GetInt32(std::string_view key) const;
  absl::StatusOr<uint64_t> GetUint64(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt64(std::string_view key) const;
  absl::StatusOr<float> GetFloat32(std::string_view key) const;
  absl::StatusOr<double> GetFloat64(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  // Arrays: the element type must match (integer arrays: any integer element
  // type whose values all fit; float arrays: f32 or f64 elements).
  absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<float>> GetFloat32Array(std::string_view key) const;
  absl::StatusOr<std::vector<int32_t>> GetInt32Array(std::string_view key) const;

  // Optional variants: nullopt if absent, an error if present with a wrong type.
  absl::StatusOr<std::optional<uint32_t>> GetOptionalUint32(std::string_view key) const;
  absl::StatusOr<std::optional<float>> GetOptionalFloat32(std::string_view key) const;
  absl::StatusOr<std::optional<bool>> GetOptionalBool(std::string_view key) const;
  absl::StatusOr<std::optional<std::string>> GetOptionalString(std::string_view key) const;

  // ---- Tensors, in file order. Names are unique.
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  // nullptr if absent.
  const GgufTensor* FindTensor(std::string_view name) const;

 private:
  class Parser;
  GgufFile() = default;
  static absl::StatusOr<std::unique_ptr<GgufFile>> Parse(std::unique_ptr<GgufFile> file);

  std::string source_;
  const uint8_t* base_ = nullptr;  // [size_] bytes: the mapping or owned_
  uint64_t size_ = 0;
  void* mapping_ = nullptr;  // mmap'd region (munmap'd in the destructor)
  uint64_t mapping_bytes_ = 0;
  std::unique_ptr<uint8_t[], void (*)(uint8_t*)> owned_{nullptr, nullptr};

  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kvs_;
  absl::flat_hash_map<std::string, size_t> kv_index_;
  std::vector<GgufTensor> tensors_;
  absl::flat_hash_map<std::string, size_t> tensor_index_;
};

}  // namespace phi3

#endif  // PHI3_ENGINE_GGUF_GGUF_FILE_H_
