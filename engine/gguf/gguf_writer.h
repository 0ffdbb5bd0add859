// Builds a GGUF file (v3 by default): metadata key/values of every type and
// tensors, written with the layout llama.cpp expects (header, KVs, tensor
// infos, padding to the alignment, tensor data each aligned).
//
// Tensor data can be given as bytes or produced while writing (a callback
// that streams the bytes), so multi-GB models never sit in memory at once.
//
// Alignment: general.alignment (u32) if set, else 32.
//
// Thread safety: not thread-safe; one writer per thread. The producers are
// called on the thread that calls Write*, in tensor order.
#ifndef PHI3_ENGINE_GGUF_GGUF_WRITER_H_
#define PHI3_ENGINE_GGUF_GGUF_WRITER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/common/tensor_type.h"
#include "engine/gguf/gguf_value.h"

namespace phi3 {

struct GgufWriterOptions {
  uint32_t version = 3;  // 2 or 3 (same layout for the fields we write)
  // Tests only: skip validation (duplicate keys/names, unknown type ids,
  // bad dims, a general.alignment that is not a power of two) so that
  // deliberately broken files can be written.
  bool allow_invalid = false;
};

// Receives the next bytes of a tensor's data.
using GgufByteSink = absl::FunctionRef<absl::Status(const void* data, size_t num_bytes)>;
// Must pass exactly the tensor's byte size to the sink, in order.
using GgufTensorProducer = std::function<absl::Status(GgufByteSink sink)>;

class GgufWriter {
 public:
  explicit GgufWriter(GgufWriterOptions options = {});

  // Metadata, written in insertion order. InvalidArgument for a duplicate key
  // (unless allow_invalid).
  absl::Status Add(std::string key, GgufValue value);
  absl::Status AddUint32(std::string key, uint32_t v) { return Add(std::move(key), GgufValue::Uint32(v)); }
  absl::Status AddInt32(std::string key, int32_t v) { return Add(std::move(key), GgufValue::Int32(v)); }
  absl::Status AddUint64(std::string key, uint64_t v) { return Add(std::move(key), GgufValue::Uint64(v)); }
  absl::Status AddFloat32(std::string key, float v) { return Add(std::move(key), GgufValue::Float32(v)); }
  absl::Status AddBool(std::string key, bool v) { return Add(std::move(key), GgufValue::Bool(v)); }
  absl::Status AddString(std::string key, std::string v) {
    return Add(std::move(key), GgufValue::String(std::move(v)));
  }
  absl::Status AddStringArray(std::string key, const std::vector<std::string>& v) {
    return Add(std::move(key), GgufValue::StringArray(v));
  }
  absl::Status AddFloat32Array(std::string key, const std::vector<float>& v) {
    return Add(std::move(key), GgufValue::Float32Array(v));
  }
  absl::Status AddInt32Array(std::string key, const std::vector<int32_t>& v) {
    return Add(std::move(key), GgufValue::Int32Array(v));
  }

  // Tensors. dims in ggml order (dims[0] = row length). Validates (unless
  // allow_invalid): unique name, supported weight type, 1..4 dims each >= 1,
  // dims[0] a multiple of the type's block size, and (AddTensor) that
  // bytes.size() equals the tensor's byte size.
  absl::Status AddTensor(std::string name, TensorType type, std::vector<int64_t> dims,
                         std::string bytes);
  absl::Status AddTensor(std::string name, TensorType type, std::vector<int64_t> dims,
                         GgufTensorProducer producer);
  // Raw variant for tests: any type id, explicit byte size.
  absl::Status AddTensorRaw(std::string name, uint32_t ggml_type, std::vector<int64_t> dims,
                            std::string bytes);

  // Byte size of a tensor of `type` and `dims`, or InvalidArgument.
  static absl::StatusOr<uint64_t> TensorBytes(TensorType type, const std::vector<int64_t>& dims);

  // Writes the whole file. WriteToFile writes to `path`.tmp and renames it
  // on success, so a failed run never leaves a truncated file at `path`.
  absl::Status WriteToFile(const std::string& path);
  absl::StatusOr<std::string> WriteToString();

 private:
  struct PendingTensor {
    std::string name;
    uint32_t ggml_type;
    std::vector<int64_t> dims;
    uint64_t num_bytes;
    GgufTensorProducer producer;
  };
  absl::Status WriteAll(GgufByteSink out);
  uint64_t Alignment() const;

  GgufWriterOptions options_;
  std::vector<std::pair<std::string, GgufValue>> kvs_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace phi3

#endif  // PHI3_ENGINE_GGUF_GGUF_WRITER_H_
