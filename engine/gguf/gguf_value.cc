#include "engine/gguf/gguf_value.h"

#include <bit>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace phi3 {

std::string GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: return "u8";
    case GgufValueType::kInt8: return "i8";
    case GgufValueType::kUint16: return "u16";
    case GgufValueType::kInt16: return "i16";
    case GgufValueType::kUint32: return "u32";
    case GgufValueType::kInt32: return "i32";
    case GgufValueType::kFloat32: return "f32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "u64";
    case GgufValueType::kInt64: return "i64";
    case GgufValueType::kFloat64: return "f64";
  }
  return absl::StrCat("type ", static_cast<uint32_t>(type));
}

bool IsGgufIntegerType(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool IsGgufFloatType(GgufValueType type) {
  return type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64;
}

namespace {
bool IsSigned(GgufValueType t) {
  return t == GgufValueType::kInt8 || t == GgufValueType::kInt16 || t == GgufValueType::kInt32 ||
         t == GgufValueType::kInt64;
}
}  // namespace

GgufValue GgufValue::FromUint(GgufValueType t, uint64_t v) {
  GgufValue out;
  out.type_ = t;
  out.bits_ = v;
  return out;
}

GgufValue GgufValue::FromInt(GgufValueType t, int64_t v) {
  GgufValue out;
  out.type_ = t;
  out.bits_ = static_cast<uint64_t>(v);
  return out;
}

GgufValue GgufValue::FromFloat(GgufValueType t, double v) {
  GgufValue out;
  out.type_ = t;
  out.bits_ = std::bit_cast<uint64_t>(v);
  return out;
}

GgufValue GgufValue::Bool(bool v) { return FromUint(GgufValueType::kBool, v ? 1 : 0); }

GgufValue GgufValue::String(std::string v) {
  GgufValue out;
  out.type_ = GgufValueType::kString;
  out.str_ = std::move(v);
  return out;
}

GgufValue GgufValue::Array(GgufValueType element_type, std::vector<GgufValue> elements) {
  GgufValue out;
  out.type_ = GgufValueType::kArray;
  out.array_type_ = element_type;
  out.array_ = std::move(elements);
  return out;
}

GgufValue GgufValue::StringArray(const std::vector<std::string>& v) {
  std::vector<GgufValue> e;
  e.reserve(v.size());
  for (const auto& s : v) e.push_back(String(s));
  return Array(GgufValueType::kString, std::move(e));
}

GgufValue GgufValue::Float32Array(const std::vector<float>& v) {
  std::vector<GgufValue> e;
  e.reserve(v.size());
  for (float x : v) e.push_back(Float32(x));
  return Array(GgufValueType::kFloat32, std::move(e));
}

GgufValue GgufValue::Int32Array(const std::vector<int32_t>& v) {
  std::vector<GgufValue> e;
  e.reserve(v.size());
  for (int32_t x : v) e.push_back(Int32(x));
  return Array(GgufValueType::kInt32, std::move(e));
}

GgufValue GgufValue::Uint32Array(const std::vector<uint32_t>& v) {
  std::vector<GgufValue> e;
  e.reserve(v.size());
  for (uint32_t x : v) e.push_back(Uint32(x));
  return Array(GgufValueType::kUint32, std::move(e));
}

std::optional<int64_t> GgufValue::AsInt64() const {
  if (!is_integer()) return std::nullopt;
  if (IsSigned(type_)) return static_cast<int64_t>(bits_);
  if (bits_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return static_cast<int64_t>(bits_);
}

std::optional<uint64_t> GgufValue::AsUint64() const {
  if (type_ == GgufValueType::kBool) return bits_;
  if (!is_integer()) return std::nullopt;
  if (IsSigned(type_) && static_cast<int64_t>(bits_) < 0) return std::nullopt;
  return bits_;
}

std::optional<double> GgufValue::AsDouble() const {
  if (!is_float()) return std::nullopt;
  return std::bit_cast<double>(bits_);
}

std::string GgufValue::DebugString() const {
  switch (type_) {
    case GgufValueType::kString:
      return absl::StrCat("\"", str_.size() > 64 ? str_.substr(0, 64) + "..." : str_, "\"");
    case GgufValueType::kBool:
      return bits_ ? "true" : "false";
    case GgufValueType::kFloat32:
    case GgufValueType::kFloat64:
      return absl::StrCat(std::bit_cast<double>(bits_));
    case GgufValueType::kArray: {
      std::vector<std::string> parts;
      for (size_t i = 0; i < array_.size() && i < 8; ++i) parts.push_back(array_[i].DebugString());
      if (array_.size() > 8) parts.push_back(absl::StrCat("... (", array_.size(), " total)"));
      return absl::StrCat("[", GgufValueTypeName(array_type_), ": ", absl::StrJoin(parts, ", "),
                          "]");
    }
    default:
      if (IsSigned(type_)) return absl::StrCat(static_cast<int64_t>(bits_));
      return absl::StrCat(bits_);
  }
}

}  // namespace phi3
