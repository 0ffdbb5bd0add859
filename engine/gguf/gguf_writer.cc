#include "engine/gguf/gguf_writer.h"

#include <bit>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "engine/gguf/gguf_file.h"

namespace phi3 {
namespace {

// Little-endian serialisation into a staging string (header, KVs, infos).
class Encoder {
 public:
  template <typename T>
  void Put(T v) {
    static_assert(std::endian::native == std::endian::little);
    buf_.append(reinterpret_cast<const char*>(&v), sizeof(v));
  }
  void PutString(std::string_view s) {
    Put<uint64_t>(s.size());
    buf_.append(s);
  }
  // The payload of `v` without its type tag.
  void PutValue(const GgufValue& v) {
    switch (v.type()) {
      case GgufValueType::kUint8: Put<uint8_t>(*v.AsUint64()); break;
      case GgufValueType::kInt8: Put<int8_t>(*v.AsInt64()); break;
      case GgufValueType::kUint16: Put<uint16_t>(*v.AsUint64()); break;
      case GgufValueType::kInt16: Put<int16_t>(*v.AsInt64()); break;
      case GgufValueType::kUint32: Put<uint32_t>(*v.AsUint64()); break;
      case GgufValueType::kInt32: Put<int32_t>(*v.AsInt64()); break;
      case GgufValueType::kUint64: Put<uint64_t>(*v.AsUint64()); break;
      case GgufValueType::kInt64: Put<int64_t>(*v.AsInt64()); break;
      case GgufValueType::kFloat32: Put<float>(static_cast<float>(*v.AsDouble())); break;
      case GgufValueType::kFloat64: Put<double>(*v.AsDouble()); break;
      case GgufValueType::kBool: Put<uint8_t>(v.bool_value() ? 1 : 0); break;
      case GgufValueType::kString: PutString(v.string_value()); break;
      case GgufValueType::kArray:
        Put<uint32_t>(static_cast<uint32_t>(v.array_type()));
        Put<uint64_t>(v.array().size());
        for (const GgufValue& e : v.array()) PutValue(e);
        break;
    }
  }
  std::string& buf() { return buf_; }

 private:
  std::string buf_;
};

// Debian's abseil is built with its own string_view (not std::string_view).
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

uint64_t AlignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

bool IsPowerOfTwo(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

}  // namespace

GgufWriter::GgufWriter(GgufWriterOptions options) : options_(options) {}

absl::Status GgufWriter::Add(std::string key, GgufValue value) {
  if (!options_.allow_invalid) {
    for (const auto& kv : kvs_) {
      if (kv.first == key) return absl::InvalidArgumentError(absl::StrCat("duplicate key ", key));
    }
    if (key == "general.alignment") {
      const auto a = value.AsUint64();
      if (value.type() != GgufValueType::kUint32 || !a || !IsPowerOfTwo(*a)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "general.alignment must be a nonzero power of two u32, got ", value.DebugString()));
      }
    }
  }
  kvs_.emplace_back(std::move(key), std::move(value));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> GgufWriter::TensorBytes(TensorType type,
                                                 const std::vector<int64_t>& dims) {
  const auto traits = GetTensorTypeTraits(type);
  if (!traits || !traits->weight_type) {
    return absl::InvalidArgumentError(
        absl::StrCat("type ", TensorTypeName(type), " cannot be stored in a model file"));
  }
  if (dims.empty() || dims.size() > static_cast<size_t>(kGgufMaxDims)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor needs 1..4 dims, got ", dims.size()));
  }
  uint64_t rows = 1;
  for (int64_t d : dims) {
    if (d < 1) return absl::InvalidArgumentError(absl::StrCat("dim ", d, " must be >= 1"));
  }
  for (size_t i = 1; i < dims.size(); ++i) {
    if (rows > (uint64_t{1} << 62) / static_cast<uint64_t>(dims[i])) {
      return absl::InvalidArgumentError("tensor too large");
    }
    rows *= dims[i];
  }
  if (dims[0] % traits->block_elements != 0) {
    return absl::InvalidArgumentError(absl::StrCat("row length ", dims[0],
                                                   " is not a multiple of the block size ",
                                                   traits->block_elements, " of ", AV(traits->name)));
  }
  const uint64_t row_bytes = dims[0] / traits->block_elements * traits->block_bytes;
  if (row_bytes > (uint64_t{1} << 62) / rows) return absl::InvalidArgumentError("tensor too large");
  return row_bytes * rows;
}

absl::Status GgufWriter::AddTensor(std::string name, TensorType type, std::vector<int64_t> dims,
                                   std::string bytes) {
  auto shared = std::make_shared<std::string>(std::move(bytes));
  if (!options_.allow_invalid) {
    auto want = TensorBytes(type, dims);
    if (!want.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", want.status().message()));
    if (*want != shared->size()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", name, " needs ", *want,
                                                     " bytes, got ", shared->size()));
    }
  }
  return AddTensorRaw(std::move(name), static_cast<uint32_t>(type), std::move(dims),
                      std::move(*shared));
}

absl::Status GgufWriter::AddTensor(std::string name, TensorType type, std::vector<int64_t> dims,
                                   GgufTensorProducer producer) {
  auto want = TensorBytes(type, dims);
  if (!want.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", want.status().message()));
  if (!options_.allow_invalid) {
    for (const auto& t : tensors_) {
      if (t.name == name) return absl::InvalidArgumentError(absl::StrCat("duplicate tensor ", name));
    }
  }
  tensors_.push_back(PendingTensor{std::move(name), static_cast<uint32_t>(type), std::move(dims),
                                   *want, std::move(producer)});
  return absl::OkStatus();
}

absl::Status GgufWriter::AddTensorRaw(std::string name, uint32_t ggml_type,
                                      std::vector<int64_t> dims, std::string bytes) {
  if (!options_.allow_invalid) {
    for (const auto& t : tensors_) {
      if (t.name == name) return absl::InvalidArgumentError(absl::StrCat("duplicate tensor ", name));
    }
  }
  const uint64_t n = bytes.size();
  auto data = std::make_shared<std::string>(std::move(bytes));
  tensors_.push_back(PendingTensor{std::move(name), ggml_type, std::move(dims), n,
                                   [data](GgufByteSink sink) {
                                     return sink(data->data(), data->size());
                                   }});
  return absl::OkStatus();
}

uint64_t GgufWriter::Alignment() const {
  for (const auto& kv : kvs_) {
    if (kv.first == "general.alignment") {
      const auto a = kv.second.AsUint64();
      if (a && IsPowerOfTwo(*a)) return *a;
    }
  }
  return kGgufDefaultAlignment;
}

absl::Status GgufWriter::WriteAll(GgufByteSink out) {
  const uint64_t align = Alignment();
  Encoder enc;
  enc.Put<uint32_t>(kGgufMagic);
  enc.Put<uint32_t>(options_.version);
  enc.Put<uint64_t>(tensors_.size());
  enc.Put<uint64_t>(kvs_.size());
  for (const auto& [key, value] : kvs_) {
    enc.PutString(key);
    enc.Put<uint32_t>(static_cast<uint32_t>(value.type()));
    enc.PutValue(value);
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    enc.PutString(t.name);
    enc.Put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) enc.Put<int64_t>(d);
    enc.Put<uint32_t>(t.ggml_type);
    enc.Put<uint64_t>(offset);
    offset = AlignUp(offset + t.num_bytes, align);
  }
  enc.buf().resize(AlignUp(enc.buf().size(), align), '\0');
  if (auto s = out(enc.buf().data(), enc.buf().size()); !s.ok()) return s;

  static const char kZeros[256] = {};
  for (const PendingTensor& t : tensors_) {
    uint64_t written = 0;
    auto sink = [&](const void* data, size_t n) -> absl::Status {
      if (n > t.num_bytes - written) {
        return absl::InvalidArgumentError(absl::StrCat("producer of tensor ", t.name,
                                                       " wrote more than ", t.num_bytes, " bytes"));
      }
      written += n;
      return out(data, n);
    };
    if (auto s = t.producer(sink); !s.ok()) return s;
    if (written != t.num_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("producer of tensor ", t.name, " wrote ",
                                                     written, " of ", t.num_bytes, " bytes"));
    }
    for (uint64_t pad = AlignUp(written, align) - written; pad > 0;) {
      const uint64_t n = std::min<uint64_t>(pad, sizeof(kZeros));
      if (auto s = out(kZeros, n); !s.ok()) return s;
      pad -= n;
    }
  }
  return absl::OkStatus();
}

absl::Status GgufWriter::WriteToFile(const std::string& path) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  std::unique_ptr<char[]> buffer(new char[1 << 22]);
  std::setvbuf(f, buffer.get(), _IOFBF, 1 << 22);
  absl::Status status = WriteAll([&](const void* data, size_t n) -> absl::Status {
    if (std::fwrite(data, 1, n, f) != n) {
      return absl::ResourceExhaustedError(absl::StrCat("write to ", tmp, " failed: ", std::strerror(errno)));
    }
    return absl::OkStatus();
  });
  if (std::fclose(f) != 0 && status.ok()) {
    status = absl::ResourceExhaustedError(absl::StrCat("closing ", tmp, " failed: ", std::strerror(errno)));
  }
  if (status.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    status = absl::InvalidArgumentError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ",
                                                     std::strerror(errno)));
  }
  if (!status.ok()) std::remove(tmp.c_str());
  return status;
}

absl::StatusOr<std::string> GgufWriter::WriteToString() {
  std::string out;
  absl::Status s = WriteAll([&](const void* data, size_t n) {
    out.append(static_cast<const char*>(data), n);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace phi3
