// Typed metadata getters of GgufFile.
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/gguf/gguf_file.h"

namespace phi3 {
namespace {

// Debian's abseil is built with its own string_view (not std::string_view).
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status WrongType(std::string_view key, std::string_view expected, const GgufValue& v) {
  std::string actual = GgufValueTypeName(v.type());
  if (v.type() == GgufValueType::kArray) {
    actual = absl::StrCat("array of ", GgufValueTypeName(v.array_type()));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("metadata key ", AV(key), " has type ", actual, ", expected ", AV(expected)));
}

template <typename T>
absl::StatusOr<T> ToInteger(std::string_view key, std::string_view expected, const GgufValue& v) {
  if (!v.is_integer()) return WrongType(key, expected, v);
  if constexpr (std::numeric_limits<T>::is_signed) {
    const auto x = v.AsInt64();
    if (x && *x >= std::numeric_limits<T>::min() && *x <= std::numeric_limits<T>::max()) {
      return static_cast<T>(*x);
    }
  } else {
    const auto x = v.AsUint64();
    if (x && *x <= std::numeric_limits<T>::max()) return static_cast<T>(*x);
  }
  return absl::InvalidArgumentError(absl::StrCat("metadata key ", AV(key), " value ", v.DebugString(),
                                                 " does not fit ", AV(expected)));
}

}  // namespace

bool GgufFile::Has(std::string_view key) const { return kv_index_.contains(AV(key)); }

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = kv_index_.find(AV(key));
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].second;
}

const GgufTensor* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(AV(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

#define PHI3_GGUF_FIND_OR_RETURN(v, key)                                                \
  const GgufValue* v = Find(key);                                                       \
  if (v == nullptr) {                                                                   \
    return absl::NotFoundError(absl::StrCat("metadata key ", AV(key), " not found in ", source_)); \
  }

absl::StatusOr<uint32_t> GgufFile::GetUint32(std::string_view key) const {
  PHI3_GGUF_FIND_OR_RETURN(v, key);
  return ToInteger<uint32_t>(key, "u32", *v);
}
absl::StatusOr<int32_t> GgufFile::GetInt32(std::string_view key) const {
  PHI3_GGUF_FIND_OR_RETURN(v, key);
  return ToInteger<int32_t>(key, "i32", *v);
}
absl::StatusOr<uint64_t> GgufFile::GetUint64(std::string_view key) const {
  PHI3_GGUF_FIND_OR_RETURN(v, key);
  return ToInteger<uint64_t>(key, "u64", *v);
}
absl::StatusOr<int64_t> GgufFile::GetInt64(std::string_view key) const {
  PHI3_GGUF_FIND_OR_RETURN(v, key);
  return ToInteger<int64_t>(key, "i64", *v);
}
absl::StatusOr<double> GgufFile::GetFloat64(std::string_view key) const {
  PHI3_GGUF_FIND_OR_RETURN(v, key);
  if (!v->is_float()) return WrongType(key, "f32 or f64", *v);
  return *v->AsDouble();
}
absl::StatusOr<float> GgufFile::GetFloat32(std::string_view key) const {
  auto d = GetFloat64(key);
  if (!d.ok()) return d.status();
  return static_cast<float>(*d);
}
absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  PHI3_GGUF_FIND_OR_RETURN(v, key);
  if (v->type() != GgufValueType::kBool) return WrongType(key, "bool", *v);
  return v->bool_value();
}
absl::StatusOr<std::string> GgufFile::GetString(std::string_view key) const {
  PHI3_GGUF_FIND_OR_RETURN(v, key);
  if (v->type() != GgufValueType::kString) return WrongType(key, "string", *v);
  return v->string_value();
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key) const {
  PHI3_GGUF_FIND_OR_RETURN(v, key);
  if (v->type() != GgufValueType::kArray || v->array_type() != GgufValueType::kString) {
    return WrongType(key, "array of string", *v);
  }
  std::vector<std::string> out;
  out.reserve(v->array().size());
  for (const GgufValue& e : v->array()) out.push_back(e.string_value());
  return out;
}

absl::StatusOr<std::vector<float>> GgufFile::GetFloat32Array(std::string_view key) const {
  PHI3_GGUF_FIND_OR_RETURN(v, key);
  if (v->type() != GgufValueType::kArray || !IsGgufFloatType(v->array_type())) {
    return WrongType(key, "array of f32", *v);
  }
  std::vector<float> out;
  out.reserve(v->array().size());
  for (const GgufValue& e : v->array()) out.push_back(static_cast<float>(*e.AsDouble()));
  return out;
}

absl::StatusOr<std::vector<int32_t>> GgufFile::GetInt32Array(std::string_view key) const {
  PHI3_GGUF_FIND_OR_RETURN(v, key);
  if (v->type() != GgufValueType::kArray || !IsGgufIntegerType(v->array_type())) {
    return WrongType(key, "array of i32", *v);
  }
  std::vector<int32_t> out;
  out.reserve(v->array().size());
  for (const GgufValue& e : v->array()) {
    auto x = ToInteger<int32_t>(key, "i32", e);
    if (!x.ok()) return x.status();
    out.push_back(*x);
  }
  return out;
}

#undef PHI3_GGUF_FIND_OR_RETURN

namespace {
template <typename T>
absl::StatusOr<std::optional<T>> Optional(bool present, absl::StatusOr<T> v) {
  if (!present) return std::optional<T>();
  if (!v.ok()) return v.status();
  return std::optional<T>(*std::move(v));
}
}  // namespace

absl::StatusOr<std::optional<uint32_t>> GgufFile::GetOptionalUint32(std::string_view key) const {
  return Optional(Has(key), GetUint32(key));
}
absl::StatusOr<std::optional<float>> GgufFile::GetOptionalFloat32(std::string_view key) const {
  return Optional(Has(key), GetFloat32(key));
}
absl::StatusOr<std::optional<bool>> GgufFile::GetOptionalBool(std::string_view key) const {
  return Optional(Has(key), GetBool(key));
}
absl::StatusOr<std::optional<std::string>> GgufFile::GetOptionalString(
    std::string_view key) const {
  return Optional(Has(key), GetString(key));
}

}  // namespace phi3
