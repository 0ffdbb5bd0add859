// A GGUF metadata value: any of the 13 GGUF value types, arrays (of any
// element type, including nested arrays) held as vectors of values.
//
// Values are plain copyable data; thread-compatible.
#ifndef PHI3_ENGINE_GGUF_GGUF_VALUE_H_
#define PHI3_ENGINE_GGUF_GGUF_VALUE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace phi3 {

// Type ids as stored in GGUF files (gguf-py GGUFValueType).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
inline constexpr uint32_t kNumGgufValueTypes = 13;

// "u8", "i32", "f32", "bool", "string", "array", ... or "type N" if unknown.
std::string GgufValueTypeName(GgufValueType type);
bool IsGgufIntegerType(GgufValueType type);
bool IsGgufFloatType(GgufValueType type);

class GgufValue {
 public:
  GgufValue() = default;  // u8 0

  static GgufValue Uint8(uint8_t v) { return FromUint(GgufValueType::kUint8, v); }
  static GgufValue Int8(int8_t v) { return FromInt(GgufValueType::kInt8, v); }
  static GgufValue Uint16(uint16_t v) { return FromUint(GgufValueType::kUint16, v); }
  static GgufValue Int16(int16_t v) { return FromInt(GgufValueType::kInt16, v); }
  static GgufValue Uint32(uint32_t v) { return FromUint(GgufValueType::kUint32, v); }
  static GgufValue Int32(int32_t v) { return FromInt(GgufValueType::kInt32, v); }
  static GgufValue Uint64(uint64_t v) { return FromUint(GgufValueType::kUint64, v); }
  static GgufValue Int64(int64_t v) { return FromInt(GgufValueType::kInt64, v); }
  static GgufValue Float32(float v) { return FromFloat(GgufValueType::kFloat32, v); }
  static GgufValue Float64(double v) { return FromFloat(GgufValueType::kFloat64, v); }
  static GgufValue Bool(bool v);
  static GgufValue String(std::string v);
  // REQUIRES: every element has type `element_type` (an array element type
  // of kArray means nested arrays, each with its own element type).
  static GgufValue Array(GgufValueType element_type, std::vector<GgufValue> elements);
  static GgufValue StringArray(const std::vector<std::string>& v);
  static GgufValue Float32Array(const std::vector<float>& v);
  static GgufValue Int32Array(const std::vector<int32_t>& v);
  static GgufValue Uint32Array(const std::vector<uint32_t>& v);

  GgufValueType type() const { return type_; }
  bool is_integer() const { return IsGgufIntegerType(type_); }
  bool is_float() const { return IsGgufFloatType(type_); }

  // The value as a signed/unsigned 64-bit integer if it is an integer type
  // (or bool, for AsUint64) whose value fits; nullopt otherwise.
  std::optional<int64_t> AsInt64() const;
  std::optional<uint64_t> AsUint64() const;
  // The value of an f32 or f64; nullopt otherwise.
  std::optional<double> AsDouble() const;

  // REQUIRES: type() == kBool.
  bool bool_value() const { return bits_ != 0; }
  // REQUIRES: type() == kString. Strings are raw bytes (GGUF says UTF-8 but
  // does not guarantee it).
  const std::string& string_value() const { return str_; }
  // REQUIRES: type() == kArray.
  GgufValueType array_type() const { return array_type_; }
  const std::vector<GgufValue>& array() const { return array_; }

  // Short human-readable rendering (arrays abbreviated), for tools and errors.
  std::string DebugString() const;

 private:
  static GgufValue FromUint(GgufValueType t, uint64_t v);
  static GgufValue FromInt(GgufValueType t, int64_t v);
  static GgufValue FromFloat(GgufValueType t, double v);

  GgufValueType type_ = GgufValueType::kUint8;
  GgufValueType array_type_ = GgufValueType::kUint8;  // arrays only
  // Integers: the value (signed types sign-extended); bool: 0/1;
  // floats: the bit pattern of the value as a double.
  uint64_t bits_ = 0;
  std::string str_;
  std::vector<GgufValue> array_;
};

}  // namespace phi3

#endif  // PHI3_ENGINE_GGUF_GGUF_VALUE_H_
