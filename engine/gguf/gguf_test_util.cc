#include "engine/gguf/gguf_test_util.h"

#include <cstdlib>

namespace phi3::testing {
namespace {

std::string Pattern(size_t n, uint8_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + seed) & 0xff);
  return s;
}

void Check(const absl::Status& s) {
  if (!s.ok()) std::abort();
}

}  // namespace

void AddSmallContents(GgufWriter& w) {
  Check(w.AddString("general.architecture", "phi3"));
  Check(w.Add("v.u8", GgufValue::Uint8(200)));
  Check(w.Add("v.i8", GgufValue::Int8(-100)));
  Check(w.Add("v.u16", GgufValue::Uint16(60000)));
  Check(w.Add("v.i16", GgufValue::Int16(-30000)));
  Check(w.AddUint32("v.u32", 4000000000u));
  Check(w.AddInt32("v.i32", -2000000000));
  Check(w.AddFloat32("v.f32", 1.5f));
  Check(w.AddBool("v.bool", true));
  Check(w.AddString("v.string", "h\xc3\xa9llo"));
  Check(w.AddUint64("v.u64", 1ull << 40));
  Check(w.Add("v.i64", GgufValue::Int64(-(1ll << 40))));
  Check(w.Add("v.f64", GgufValue::Float64(2.25)));
  Check(w.AddStringArray("v.strings", {"a", "", "\xe2\x96\x81the"}));
  Check(w.AddFloat32Array("v.floats", {0.5f, -1.0f}));
  Check(w.AddInt32Array("v.ints", {1, -2, 3}));
  Check(w.Add("v.nested", GgufValue::Array(GgufValueType::kArray,
                                           {GgufValue::Int32Array({1, 2}),
                                            GgufValue::StringArray({"x"})})));
  Check(w.AddTensor("t.f32", TensorType::kF32, {8, 3}, Pattern(8 * 3 * 4, 1)));
  Check(w.AddTensor("t.f16", TensorType::kF16, {16}, Pattern(32, 2)));
  Check(w.AddTensor("t.q8_0", TensorType::kQ8_0, {64, 2}, Pattern(2 * 2 * 34, 3)));
  Check(w.AddTensor("t.q4_K", TensorType::kQ4_K, {256, 1}, Pattern(144, 4)));
}

std::string SmallGguf(uint32_t version) {
  GgufWriter w(GgufWriterOptions{.version = version});
  AddSmallContents(w);
  auto bytes = w.WriteToString();
  Check(bytes.status());
  return *bytes;
}

size_t TensorInfoOffset(const std::string& bytes, std::string_view name) {
  // The info starts with the u64 name length then the name.
  std::string needle(8, '\0');
  const uint64_t len = name.size();
  std::memcpy(needle.data(), &len, 8);
  needle.append(name);
  const size_t at = bytes.find(needle);
  if (at == std::string::npos) std::abort();
  return at + needle.size();
}

std::string RawTensorGguf(uint32_t type, std::vector<int64_t> dims, size_t num_bytes) {
  GgufWriter w(GgufWriterOptions{.allow_invalid = true});
  Check(w.AddString("general.architecture", "phi3"));
  Check(w.AddTensorRaw("t", type, std::move(dims), std::string(num_bytes, '\x11')));
  auto bytes = w.WriteToString();
  Check(bytes.status());
  return *bytes;
}

}  // namespace phi3::testing
