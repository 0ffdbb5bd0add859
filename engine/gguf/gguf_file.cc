#include "engine/gguf/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace phi3 {
namespace {

// Nested arrays deeper than this are refused (bounds parser recursion).
constexpr int kMaxArrayDepth = 8;
// Caps that keep memory bounded for corrupt counts that the file size alone
// would allow (a value costs ~72 bytes in memory but 1 byte in the file).
// Real models hold ~1M metadata values (vocabularies) and ~1k tensors.
constexpr uint64_t kMaxMetadataValues = uint64_t{1} << 23;
constexpr uint64_t kMaxTensors = uint64_t{1} << 20;
// ggml's GGML_MAX_NAME is 64 including the terminating NUL.
constexpr uint64_t kMaxTensorNameBytes = 63;

constexpr const char* kSupportedTypes = "f32, f16, bf16, q8_0, q4_0, q4_1, q4_K, q5_K, q6_K";

// Smallest encoding of one value of `type`, for bounding counts by the bytes
// left in the file before allocating.
uint64_t MinValueBytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kString:  // u64 length
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    case GgufValueType::kArray:  // u32 type + u64 count
      return 12;
  }
  return 1;
}

bool IsPowerOfTwo(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

// Debian's abseil is built with its own string_view (not std::string_view).
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

// Bounds-checked little-endian cursor over the file bytes. Every read checks
// the remaining size first; nothing is read past size_.
class GgufFile::Parser {
 public:
  explicit Parser(GgufFile& f) : f_(f), base_(f.base_), size_(f.size_) {}

  absl::Status Run() {
    uint32_t magic = 0;
    if (auto s = Read(&magic, "magic"); !s.ok()) return s;
    if (magic != kGgufMagic) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": not a GGUF file (magic 0x",
                                              absl::Hex(magic, absl::kZeroPad8),
                                              ", expected 0x46554747 \"GGUF\")"));
    }
    uint32_t version = 0;
    if (auto s = Read(&version, "version"); !s.ok()) return s;
    if (version == 1) {
      return absl::UnimplementedError(absl::StrCat(
          f_.source_, ": GGUF version 1 is not supported (only versions 2 and 3); "
                      "re-convert the model with a current llama.cpp"));
    }
    if (version != 2 && version != 3) {
      return absl::UnimplementedError(absl::StrCat(
          f_.source_, ": GGUF version ", version,
          " is not supported (only versions 2 and 3; a big-endian file also shows this)"));
    }
    f_.version_ = version;
    uint64_t num_tensors = 0, num_kvs = 0;
    if (auto s = Read(&num_tensors, "tensor count"); !s.ok()) return s;
    if (auto s = Read(&num_kvs, "metadata kv count"); !s.ok()) return s;
    // A KV takes >= 8 (key length) + 4 (type) + 1 bytes; a tensor info
    // >= 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset).
    if (num_kvs > Remaining() / 13) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": metadata kv count ", num_kvs,
                                              " exceeds what the file (", size_,
                                              " bytes) can hold"));
    }
    if (num_tensors > kMaxTensors) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": tensor count ", num_tensors,
                                              " exceeds the limit of ", kMaxTensors));
    }
    if (num_tensors > Remaining() / 32) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": tensor count ", num_tensors,
                                              " exceeds what the file (", size_,
                                              " bytes) can hold"));
    }
    f_.kvs_.reserve(num_kvs);
    for (uint64_t i = 0; i < num_kvs; ++i) {
      if (auto s = ReadKv(i); !s.ok()) return s;
    }
    if (auto s = ReadAlignment(); !s.ok()) return s;
    f_.tensors_.reserve(num_tensors);
    for (uint64_t i = 0; i < num_tensors; ++i) {
      if (auto s = ReadTensorInfo(i); !s.ok()) return s;
    }
    return PlaceTensors();
  }

 private:
  uint64_t Remaining() const { return size_ - pos_; }

  absl::Status Truncated(uint64_t need, std::string_view what) const {
    return absl::DataLossError(absl::StrCat(f_.source_, ": truncated file: reading ", AV(what),
                                            " at offset ", pos_, " needs ", need,
                                            " bytes, only ", Remaining(), " left"));
  }

  template <typename T>
  absl::Status Read(T* out, std::string_view what) {
    if (Remaining() < sizeof(T)) return Truncated(sizeof(T), what);
    std::memcpy(out, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return absl::OkStatus();
  }

  absl::Status ReadString(std::string* out, std::string_view what) {
    uint64_t len = 0;
    if (auto s = Read(&len, what); !s.ok()) return s;
    if (len > Remaining()) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": ", AV(what), " at offset ", pos_,
                                              " has length ", len, ", beyond the end of the file (",
                                              Remaining(), " bytes left)"));
    }
    out->assign(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return absl::OkStatus();
  }

  absl::Status ReadValue(GgufValueType type, const std::string& key, int depth, GgufValue* out) {
    switch (type) {
      case GgufValueType::kUint8: return ReadScalar<uint8_t>(key, out, GgufValue::Uint8);
      case GgufValueType::kInt8: return ReadScalar<int8_t>(key, out, GgufValue::Int8);
      case GgufValueType::kUint16: return ReadScalar<uint16_t>(key, out, GgufValue::Uint16);
      case GgufValueType::kInt16: return ReadScalar<int16_t>(key, out, GgufValue::Int16);
      case GgufValueType::kUint32: return ReadScalar<uint32_t>(key, out, GgufValue::Uint32);
      case GgufValueType::kInt32: return ReadScalar<int32_t>(key, out, GgufValue::Int32);
      case GgufValueType::kUint64: return ReadScalar<uint64_t>(key, out, GgufValue::Uint64);
      case GgufValueType::kInt64: return ReadScalar<int64_t>(key, out, GgufValue::Int64);
      case GgufValueType::kFloat32: return ReadScalar<float>(key, out, GgufValue::Float32);
      case GgufValueType::kFloat64: return ReadScalar<double>(key, out, GgufValue::Float64);
      case GgufValueType::kBool: {
        uint8_t b = 0;
        if (auto s = Read(&b, absl::StrCat("value of ", key)); !s.ok()) return s;
        *out = GgufValue::Bool(b != 0);
        return absl::OkStatus();
      }
      case GgufValueType::kString: {
        std::string str;
        if (auto s = ReadString(&str, absl::StrCat("string value of ", key)); !s.ok()) return s;
        *out = GgufValue::String(std::move(str));
        return absl::OkStatus();
      }
      case GgufValueType::kArray:
        return ReadArray(key, depth, out);
    }
    return absl::DataLossError(absl::StrCat(f_.source_, ": key ", key, " has unknown value type ",
                                            static_cast<uint32_t>(type)));
  }

  template <typename T, typename Make>
  absl::Status ReadScalar(const std::string& key, GgufValue* out, Make make) {
    T v{};
    if (auto s = Read(&v, absl::StrCat("value of ", key)); !s.ok()) return s;
    *out = make(v);
    return absl::OkStatus();
  }

  absl::Status ReadArray(const std::string& key, int depth, GgufValue* out) {
    if (depth >= kMaxArrayDepth) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": key ", key, " nests arrays deeper than ",
                                              kMaxArrayDepth, " levels"));
    }
    uint32_t raw_type = 0;
    uint64_t count = 0;
    if (auto s = Read(&raw_type, absl::StrCat("array type of ", key)); !s.ok()) return s;
    if (raw_type >= kNumGgufValueTypes) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": key ", key,
                                              " has an array of unknown value type ", raw_type));
    }
    const auto type = static_cast<GgufValueType>(raw_type);
    if (auto s = Read(&count, absl::StrCat("array length of ", key)); !s.ok()) return s;
    if (count > Remaining() / MinValueBytes(type)) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": key ", key, " has an array of ", count,
                                              " ", GgufValueTypeName(type),
                                              " values, more than the file can hold (",
                                              Remaining(), " bytes left)"));
    }
    if (count > kMaxMetadataValues - num_values_) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": key ", key, " has an array of ", count,
                                              " values; the metadata would exceed the limit of ",
                                              kMaxMetadataValues, " values"));
    }
    num_values_ += count;
    std::vector<GgufValue> elements(count);
    for (uint64_t i = 0; i < count; ++i) {
      if (auto s = ReadValue(type, key, depth + 1, &elements[i]); !s.ok()) return s;
    }
    *out = GgufValue::Array(type, std::move(elements));
    return absl::OkStatus();
  }

  absl::Status ReadKv(uint64_t index) {
    std::string key;
    if (auto s = ReadString(&key, absl::StrCat("key of metadata kv ", index)); !s.ok()) return s;
    if (f_.kv_index_.contains(key)) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": duplicate metadata key ", key));
    }
    uint32_t raw_type = 0;
    if (auto s = Read(&raw_type, absl::StrCat("value type of ", key)); !s.ok()) return s;
    if (raw_type >= kNumGgufValueTypes) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": key ", key,
                                              " has unknown value type ", raw_type));
    }
    GgufValue value;
    if (auto s = ReadValue(static_cast<GgufValueType>(raw_type), key, 0, &value); !s.ok()) {
      return s;
    }
    f_.kv_index_.emplace(key, f_.kvs_.size());
    f_.kvs_.emplace_back(std::move(key), std::move(value));
    return absl::OkStatus();
  }

  absl::Status ReadAlignment() {
    const GgufValue* v = f_.Find("general.alignment");
    if (v == nullptr) return absl::OkStatus();
    const auto a = v->AsUint64();
    if (v->type() != GgufValueType::kUint32 || !a || !IsPowerOfTwo(*a)) {
      return absl::DataLossError(absl::StrCat(f_.source_,
                                              ": general.alignment must be a nonzero power of two "
                                              "u32, got ",
                                              GgufValueTypeName(v->type()), " ", v->DebugString()));
    }
    f_.alignment_ = *a;
    return absl::OkStatus();
  }

  absl::Status Corrupt(const std::string& tensor, std::string_view problem) const {
    return absl::DataLossError(absl::StrCat(f_.source_, ": tensor ", tensor, " ", AV(problem)));
  }

  absl::Status ReadTensorInfo(uint64_t index) {
    GgufTensor t;
    if (auto s = ReadString(&t.name, absl::StrCat("name of tensor ", index)); !s.ok()) return s;
    if (t.name.empty() || t.name.size() > kMaxTensorNameBytes) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": tensor ", index, " has a name of ",
                                              t.name.size(), " bytes (expected 1..",
                                              kMaxTensorNameBytes, ")"));
    }
    if (f_.tensor_index_.contains(t.name)) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": duplicate tensor name ", t.name));
    }
    uint32_t num_dims = 0;
    if (auto s = Read(&num_dims, absl::StrCat("dim count of tensor ", t.name)); !s.ok()) return s;
    if (num_dims < 1 || num_dims > kGgufMaxDims) {
      return Corrupt(t.name, absl::StrCat("has ", num_dims, " dims (expected 1..", kGgufMaxDims, ")"));
    }
    uint64_t num_elements = 1;
    for (uint32_t d = 0; d < num_dims; ++d) {
      int64_t dim = 0;
      if (auto s = Read(&dim, absl::StrCat("dims of tensor ", t.name)); !s.ok()) return s;
      if (dim < 1) return Corrupt(t.name, absl::StrCat("has dim ", d, " = ", dim, " (must be >= 1)"));
      if (num_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) /
                             static_cast<uint64_t>(dim)) {
        return Corrupt(t.name, "has an element count that overflows 64 bits");
      }
      num_elements *= static_cast<uint64_t>(dim);
      t.dims.push_back(dim);
    }
    t.num_elements = static_cast<int64_t>(num_elements);
    uint32_t raw_type = 0;
    if (auto s = Read(&raw_type, absl::StrCat("type of tensor ", t.name)); !s.ok()) return s;
    const auto traits = GetTensorTypeTraits(raw_type);
    if (!traits || !traits->weight_type) {
      return absl::UnimplementedError(absl::StrCat(
          f_.source_, ": tensor ", t.name, " has type ", TensorTypeName(raw_type),
          ", which phi3serve does not support; supported: ", kSupportedTypes));
    }
    t.type = static_cast<TensorType>(raw_type);
    if (t.dims[0] % traits->block_elements != 0) {
      return Corrupt(t.name, absl::StrCat("has row length ", t.dims[0],
                                          ", not a multiple of the ", AV(traits->name),
                                          " block size ", traits->block_elements));
    }
    const uint64_t row_bytes =
        static_cast<uint64_t>(t.dims[0] / traits->block_elements) * traits->block_bytes;
    const uint64_t rows = num_elements / static_cast<uint64_t>(t.dims[0]);
    if (row_bytes > std::numeric_limits<uint64_t>::max() / rows) {
      return Corrupt(t.name, "has a byte size that overflows 64 bits");
    }
    t.num_bytes = row_bytes * rows;
    if (auto s = Read(&t.offset, absl::StrCat("offset of tensor ", t.name)); !s.ok()) return s;
    if (t.offset % f_.alignment_ != 0) {
      return Corrupt(t.name, absl::StrCat("has offset ", t.offset, ", not a multiple of the alignment ",
                                          f_.alignment_));
    }
    f_.tensor_index_.emplace(t.name, f_.tensors_.size());
    f_.tensors_.push_back(std::move(t));
    return absl::OkStatus();
  }

  absl::Status PlaceTensors() {
    // pos_ <= size_, so this cannot overflow for any alignment < 2^32.
    const uint64_t data_offset = (pos_ + f_.alignment_ - 1) / f_.alignment_ * f_.alignment_;
    f_.data_offset_ = data_offset;
    if (f_.tensors_.empty()) return absl::OkStatus();
    if (data_offset > size_) {
      return absl::DataLossError(absl::StrCat(f_.source_, ": truncated file: tensor data starts at ",
                                              data_offset, " but the file has ", size_, " bytes"));
    }
    const uint64_t data_bytes = size_ - data_offset;
    for (GgufTensor& t : f_.tensors_) {
      if (t.offset > data_bytes || t.num_bytes > data_bytes - t.offset) {
        return Corrupt(t.name, absl::StrCat("data [", t.offset, ", +", t.num_bytes,
                                            ") runs past the end of the data section (",
                                            data_bytes, " bytes); truncated file?"));
      }
      t.data = base_ + data_offset + t.offset;
    }
    std::vector<const GgufTensor*> by_offset;
    by_offset.reserve(f_.tensors_.size());
    for (const GgufTensor& t : f_.tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const GgufTensor* prev = by_offset[i - 1];
      if (by_offset[i]->offset < prev->offset + prev->num_bytes) {
        return absl::DataLossError(absl::StrCat(f_.source_, ": tensors ", prev->name, " and ",
                                                by_offset[i]->name, " overlap"));
      }
    }
    return absl::OkStatus();
  }

  GgufFile& f_;
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
  uint64_t num_values_ = 0;  // array elements parsed so far (<= kMaxMetadataValues)
};

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_bytes_);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Parse(std::unique_ptr<GgufFile> file) {
  Parser parser(*file);
  if (auto s = parser.Run(); !s.ok()) return s;
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string msg = absl::StrCat("cannot open ", path, ": ", std::strerror(err));
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(msg);
    if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
    return absl::InvalidArgumentError(msg);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->source_ = path;
  file->size_ = static_cast<uint64_t>(st.st_size);
  if (file->size_ > 0) {
    void* m = mmap(nullptr, file->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return absl::ResourceExhaustedError(absl::StrCat("cannot mmap ", path, ": ", std::strerror(err)));
    }
    file->mapping_ = m;
    file->mapping_bytes_ = file->size_;
    file->base_ = static_cast<const uint8_t*>(m);
  }
  ::close(fd);
  return Parse(std::move(file));
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::OpenBuffer(std::string_view bytes) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->source_ = "<buffer>";
  file->size_ = bytes.size();
  // 64-byte aligned so tensor views are as aligned as in a mapping.
  const size_t alloc = (bytes.size() + 63) / 64 * 64 + 64;
  auto* mem = static_cast<uint8_t*>(std::aligned_alloc(64, alloc));
  if (mem == nullptr) return absl::ResourceExhaustedError("cannot allocate the GGUF buffer");
  if (!bytes.empty()) std::memcpy(mem, bytes.data(), bytes.size());
  file->owned_ = std::unique_ptr<uint8_t[], void (*)(uint8_t*)>(mem, [](uint8_t* p) { std::free(p); });
  file->base_ = mem;
  return Parse(std::move(file));
}

}  // namespace phi3
