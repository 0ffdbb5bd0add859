#include "engine/gguf/gguf_file.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/status/status.h"
#include "engine/gguf/gguf_test_util.h"
#include "engine/gguf/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

using ::phi3::testing::Peek;
using ::phi3::testing::Poke;
using ::phi3::testing::RawTensorGguf;
using ::phi3::testing::SmallGguf;
using ::phi3::testing::TensorInfoOffset;
using ::testing::HasSubstr;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// Asserts that opening `bytes` fails with `code` and a message containing `text`.
void ExpectError(const std::string& bytes, absl::StatusCode code, const std::string& text) {
  auto f = GgufFile::OpenBuffer(bytes);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), code) << f.status();
  EXPECT_THAT(Msg(f.status()), HasSubstr(text));
}

TEST(GgufFileTest, ReadsEveryValueTypeAndTensor) {
  for (uint32_t version : {2u, 3u}) {
    auto f = GgufFile::OpenBuffer(SmallGguf(version));
    ASSERT_TRUE(f.ok()) << f.status();
    const GgufFile& g = **f;
    EXPECT_EQ(g.version(), version);
    EXPECT_EQ(g.alignment(), 32u);
    EXPECT_EQ(g.data_offset() % 32, 0u);
    EXPECT_EQ(*g.GetString("general.architecture"), "phi3");
    EXPECT_EQ(*g.GetUint32("v.u8"), 200u);
    EXPECT_EQ(*g.GetInt32("v.i8"), -100);
    EXPECT_EQ(*g.GetUint32("v.u16"), 60000u);
    EXPECT_EQ(*g.GetInt32("v.i16"), -30000);
    EXPECT_EQ(*g.GetUint32("v.u32"), 4000000000u);
    EXPECT_EQ(*g.GetInt64("v.u32"), 4000000000);
    EXPECT_EQ(*g.GetInt32("v.i32"), -2000000000);
    EXPECT_EQ(*g.GetFloat32("v.f32"), 1.5f);
    EXPECT_EQ(*g.GetBool("v.bool"), true);
    EXPECT_EQ(*g.GetString("v.string"), "h\xc3\xa9llo");
    EXPECT_EQ(*g.GetUint64("v.u64"), 1ull << 40);
    EXPECT_EQ(*g.GetInt64("v.i64"), -(1ll << 40));
    EXPECT_EQ(*g.GetFloat64("v.f64"), 2.25);
    EXPECT_EQ(*g.GetFloat32("v.f64"), 2.25f);
    EXPECT_EQ(*g.GetStringArray("v.strings"),
              (std::vector<std::string>{"a", "", "\xe2\x96\x81the"}));
    EXPECT_EQ(*g.GetFloat32Array("v.floats"), (std::vector<float>{0.5f, -1.0f}));
    EXPECT_EQ(*g.GetInt32Array("v.ints"), (std::vector<int32_t>{1, -2, 3}));
    const GgufValue* nested = g.Find("v.nested");
    ASSERT_NE(nested, nullptr);
    ASSERT_EQ(nested->array_type(), GgufValueType::kArray);
    ASSERT_EQ(nested->array().size(), 2u);
    EXPECT_EQ(nested->array()[0].array()[1].AsInt64(), 2);
    EXPECT_EQ(nested->array()[1].array()[0].string_value(), "x");
    EXPECT_EQ(g.metadata().size(), 17u);

    ASSERT_EQ(g.tensors().size(), 4u);
    const GgufTensor* q = g.FindTensor("t.q8_0");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->type, TensorType::kQ8_0);
    EXPECT_EQ(q->dims, (std::vector<int64_t>{64, 2}));
    EXPECT_EQ(q->num_elements, 128);
    EXPECT_EQ(q->num_rows(), 2);
    EXPECT_EQ(q->num_bytes, 2u * 2 * 34);
    EXPECT_EQ(q->data[0], static_cast<uint8_t>(3));
    EXPECT_EQ(q->data[1], static_cast<uint8_t>(34));
    for (const GgufTensor& t : g.tensors()) {
      EXPECT_EQ(t.offset % 32, 0u) << t.name;
      EXPECT_EQ(t.data, g.FindTensor(t.name)->data);
    }
    EXPECT_EQ(g.FindTensor("t.q4_K")->num_bytes, 144u);
    EXPECT_EQ(g.FindTensor("missing"), nullptr);
  }
}

TEST(GgufFileTest, HonoursGeneralAlignment) {
  GgufWriter w;
  ASSERT_TRUE(w.AddUint32("general.alignment", 256).ok());
  testing::AddSmallContents(w);
  auto f = GgufFile::OpenBuffer(*w.WriteToString());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->alignment(), 256u);
  EXPECT_EQ((*f)->data_offset() % 256, 0u);
  for (const GgufTensor& t : (*f)->tensors()) EXPECT_EQ(t.offset % 256, 0u) << t.name;
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*f)->FindTensor("t.q4_K")->data) % 64, 0u);
}

TEST(GgufFileTest, RefusesBadAlignment) {
  for (uint32_t a : {0u, 3u, 48u}) {
    GgufWriter w(GgufWriterOptions{.allow_invalid = true});
    ASSERT_TRUE(w.AddUint32("general.alignment", a).ok());
    ExpectError(*w.WriteToString(), absl::StatusCode::kDataLoss,
                "general.alignment must be a nonzero power of two");
  }
  GgufWriter w(GgufWriterOptions{.allow_invalid = true});
  ASSERT_TRUE(w.AddString("general.alignment", "32").ok());
  ExpectError(*w.WriteToString(), absl::StatusCode::kDataLoss, "got string");
}

TEST(GgufFileTest, TruncationAtEveryPositionIsDataLoss) {
  const std::string bytes = SmallGguf();
  auto full = GgufFile::OpenBuffer(bytes);
  ASSERT_TRUE(full.ok());
  uint64_t end_of_data = 0;
  for (const GgufTensor& t : (*full)->tensors()) {
    end_of_data = std::max(end_of_data, (*full)->data_offset() + t.offset + t.num_bytes);
  }
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto f = GgufFile::OpenBuffer(std::string_view(bytes).substr(0, n));
    if (n < end_of_data) {
      ASSERT_FALSE(f.ok()) << "length " << n;
      EXPECT_EQ(f.status().code(), absl::StatusCode::kDataLoss) << n << ": " << f.status();
    } else {
      EXPECT_TRUE(f.ok()) << n << ": " << f.status();  // only trailing padding cut
    }
  }
  ExpectError(bytes.substr(0, 2), absl::StatusCode::kDataLoss, "truncated file: reading magic");
  ExpectError(bytes.substr(0, 30), absl::StatusCode::kDataLoss,
              "metadata kv count 17 exceeds what the file (30 bytes) can hold");
  ExpectError(bytes.substr(0, TensorInfoOffset(bytes, "t.q8_0") + 2), absl::StatusCode::kDataLoss,
              "truncated file: reading dim count of tensor t.q8_0");
  ExpectError(bytes.substr(0, end_of_data - 1), absl::StatusCode::kDataLoss,
              "runs past the end of the data section");
}

TEST(GgufFileTest, RefusesBadMagic) {
  std::string bytes = SmallGguf();
  bytes[0] = 'X';
  ExpectError(bytes, absl::StatusCode::kDataLoss, "not a GGUF file");
}

TEST(GgufFileTest, RefusesUnsupportedVersions) {
  std::string bytes = SmallGguf();
  Poke<uint32_t>(bytes, 4, 1);
  ExpectError(bytes, absl::StatusCode::kUnimplemented, "GGUF version 1 is not supported");
  Poke<uint32_t>(bytes, 4, 4);
  ExpectError(bytes, absl::StatusCode::kUnimplemented, "GGUF version 4 is not supported");
  Poke<uint32_t>(bytes, 4, 0x03000000);  // big-endian v3
  ExpectError(bytes, absl::StatusCode::kUnimplemented, "big-endian");
}

TEST(GgufFileTest, RefusesAbsurdCounts) {
  const std::string good = SmallGguf();
  std::string bytes = good;
  Poke<uint64_t>(bytes, 8, 1ull << 60);
  ExpectError(bytes, absl::StatusCode::kDataLoss, "tensor count 1152921504606846976 exceeds");
  bytes = good;
  Poke<uint64_t>(bytes, 16, ~0ull);
  ExpectError(bytes, absl::StatusCode::kDataLoss, "metadata kv count");
  // First key's length.
  bytes = good;
  Poke<uint64_t>(bytes, 24, 1ull << 62);
  ExpectError(bytes, absl::StatusCode::kDataLoss, "beyond the end of the file");
  // Length of the v.strings array: key "v.strings" then u32 type, u32 elem type, u64 count.
  bytes = good;
  size_t at = bytes.find("v.strings") + 9 + 4 + 4;
  ASSERT_EQ(Peek<uint64_t>(bytes, at), 3u);
  Poke<uint64_t>(bytes, at, 1ull << 61);
  ExpectError(bytes, absl::StatusCode::kDataLoss,
              "key v.strings has an array of 2305843009213693952 string values, more than");
  // A string element length.
  bytes = good;
  Poke<uint64_t>(bytes, at + 8, ~0ull - 3);
  ExpectError(bytes, absl::StatusCode::kDataLoss, "string value of v.strings");
}

TEST(GgufFileTest, CapsMemoryForHugeCounts) {
  // 2^24 u8 values fit in the file but exceed the metadata value budget.
  GgufWriter w;
  ASSERT_TRUE(w.Add("big", GgufValue::Array(GgufValueType::kUint8, {GgufValue::Uint8(1)})).ok());
  std::string big = *w.WriteToString();
  const size_t count_at = big.find("big") + 3 + 4 + 4;
  ASSERT_EQ(Peek<uint64_t>(big, count_at), 1u);
  Poke<uint64_t>(big, count_at, 1 << 24);
  big.append((1 << 24) + 64, '\0');
  ExpectError(big, absl::StatusCode::kDataLoss,
              "key big has an array of 16777216 values; the metadata would exceed the limit");
  std::string bytes = SmallGguf();
  Poke<uint64_t>(bytes, 8, 2000000);
  ExpectError(bytes, absl::StatusCode::kDataLoss, "tensor count 2000000 exceeds the limit");
}

TEST(GgufFileTest, RefusesUnknownValueTypes) {
  std::string bytes = SmallGguf();
  const size_t at = bytes.find("v.u32") + 5;
  Poke<uint32_t>(bytes, at, 13);
  ExpectError(bytes, absl::StatusCode::kDataLoss, "key v.u32 has unknown value type 13");
  bytes = SmallGguf();
  const size_t arr = bytes.find("v.ints") + 6 + 4;
  Poke<uint32_t>(bytes, arr, 99);
  ExpectError(bytes, absl::StatusCode::kDataLoss, "array of unknown value type 99");
}

TEST(GgufFileTest, RefusesDeeplyNestedArrays) {
  GgufValue v = GgufValue::Int32Array({1});
  for (int i = 0; i < 9; ++i) v = GgufValue::Array(GgufValueType::kArray, {v});
  GgufWriter w;
  ASSERT_TRUE(w.Add("deep", v).ok());
  ExpectError(*w.WriteToString(), absl::StatusCode::kDataLoss, "nests arrays deeper than 8");
}

TEST(GgufFileTest, RefusesDuplicates) {
  GgufWriter w(GgufWriterOptions{.allow_invalid = true});
  ASSERT_TRUE(w.AddUint32("k", 1).ok());
  ASSERT_TRUE(w.AddUint32("k", 2).ok());
  ExpectError(*w.WriteToString(), absl::StatusCode::kDataLoss, "duplicate metadata key k");

  GgufWriter t(GgufWriterOptions{.allow_invalid = true});
  ASSERT_TRUE(t.AddTensorRaw("w", 0, {4}, std::string(16, '\0')).ok());
  ASSERT_TRUE(t.AddTensorRaw("w", 0, {4}, std::string(16, '\0')).ok());
  ExpectError(*t.WriteToString(), absl::StatusCode::kDataLoss, "duplicate tensor name w");
}

TEST(GgufFileTest, RefusesBadShapes) {
  ExpectError(RawTensorGguf(0, {1, 1, 1, 1, 1}, 4), absl::StatusCode::kDataLoss,
              "tensor t has 5 dims (expected 1..4)");
  ExpectError(RawTensorGguf(0, {}, 4), absl::StatusCode::kDataLoss, "tensor t has 0 dims");
  ExpectError(RawTensorGguf(0, {4, 0}, 4), absl::StatusCode::kDataLoss,
              "tensor t has dim 1 = 0 (must be >= 1)");
  ExpectError(RawTensorGguf(0, {-4}, 4), absl::StatusCode::kDataLoss, "dim 0 = -4");
  ExpectError(RawTensorGguf(0, {1ll << 32, 1ll << 32}, 4), absl::StatusCode::kDataLoss,
              "element count that overflows");
  ExpectError(RawTensorGguf(0, {1ll << 31, 1ll << 31, 2}, 4), absl::StatusCode::kDataLoss,
              "element count that overflows");
  ExpectError(RawTensorGguf(0, {1ll << 20, 1ll << 20}, 4), absl::StatusCode::kDataLoss,
              "runs past the end");
  // 2^62 f32 elements: element count fits int64, byte size does not.
  ExpectError(RawTensorGguf(0, {1ll << 31, 1ll << 31}, 4), absl::StatusCode::kDataLoss,
              "byte size that overflows");
  ExpectError(RawTensorGguf(8, {48}, 34), absl::StatusCode::kDataLoss,
              "row length 48, not a multiple of the q8_0 block size 32");
  ExpectError(RawTensorGguf(12, {128, 2}, 144), absl::StatusCode::kDataLoss,
              "not a multiple of the q4_K block size 256");
}

TEST(GgufFileTest, RefusesBadNames) {
  GgufWriter w(GgufWriterOptions{.allow_invalid = true});
  ASSERT_TRUE(w.AddTensorRaw(std::string(64, 'n'), 0, {4}, std::string(16, '\0')).ok());
  ExpectError(*w.WriteToString(), absl::StatusCode::kDataLoss, "name of 64 bytes (expected 1..63)");
  GgufWriter e(GgufWriterOptions{.allow_invalid = true});
  ASSERT_TRUE(e.AddTensorRaw("", 0, {4}, std::string(16, '\0')).ok());
  ExpectError(*e.WriteToString(), absl::StatusCode::kDataLoss, "name of 0 bytes");
}

TEST(GgufFileTest, RefusesUnsupportedTensorTypesByName) {
  GgufWriter w(GgufWriterOptions{.allow_invalid = true});
  ASSERT_TRUE(w.AddTensorRaw("blk.0.ffn_down.weight", 16, {256}, std::string(66, '\0')).ok());
  ExpectError(*w.WriteToString(), absl::StatusCode::kUnimplemented,
              "tensor blk.0.ffn_down.weight has type iq2_xxs, which phi3serve does not support; "
              "supported: f32, f16, bf16, q8_0, q4_0, q4_1, q4_K, q5_K, q6_K");
  // Activation-only types are not model weights.
  ExpectError(RawTensorGguf(15, {256}, 292), absl::StatusCode::kUnimplemented, "has type q8_K");
  ExpectError(RawTensorGguf(6, {32}, 22), absl::StatusCode::kUnimplemented, "has type q5_0");
  ExpectError(RawTensorGguf(1000, {32}, 22), absl::StatusCode::kUnimplemented, "has type type 1000");
}

TEST(GgufFileTest, RefusesBadOffsets) {
  const std::string good = SmallGguf();
  // t.f16: n_dims(4) + 1 dim (8) + type (4), then offset.
  const size_t off_b = TensorInfoOffset(good, "t.f16") + 4 + 8 + 4;
  const uint64_t b = Peek<uint64_t>(good, off_b);
  ASSERT_GT(b, 0u);
  std::string bytes = good;
  Poke<uint64_t>(bytes, off_b, b + 8);
  ExpectError(bytes, absl::StatusCode::kDataLoss,
              "tensor t.f16 has offset " + std::to_string(b + 8) +
                  ", not a multiple of the alignment 32");
  bytes = good;
  Poke<uint64_t>(bytes, off_b, 0);
  ExpectError(bytes, absl::StatusCode::kDataLoss, "tensors t.f32 and t.f16 overlap");
  bytes = good;
  Poke<uint64_t>(bytes, off_b, 1ull << 40);
  ExpectError(bytes, absl::StatusCode::kDataLoss, "tensor t.f16 data [1099511627776");
  bytes = good;
  Poke<uint64_t>(bytes, off_b, ~0ull - 31);  // aligned, and offset + size overflows
  ExpectError(bytes, absl::StatusCode::kDataLoss, "runs past the end");
}

TEST(GgufFileTest, OpensFilesByPath) {
  const std::string path = ::testing::TempDir() + "/gguf_file_test_" + std::to_string(getpid());
  auto bytes = SmallGguf();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), bytes.size());
  }
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->file_size(), bytes.size());
  EXPECT_EQ((*f)->source(), path);
  EXPECT_EQ(std::memcmp((*f)->FindTensor("t.f32")->data,
                        bytes.data() + (*f)->data_offset() + (*f)->FindTensor("t.f32")->offset, 96),
            0);
  std::remove(path.c_str());

  auto missing = GgufFile::Open(path);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(missing.status()), HasSubstr(path));
  auto dir = GgufFile::Open(::testing::TempDir());
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(dir.status()), HasSubstr("not a regular file"));

  const std::string empty = path + ".empty";
  { std::ofstream out(empty); }
  auto e = GgufFile::Open(empty);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(e.status()), HasSubstr("truncated file"));
  std::remove(empty.c_str());
}

TEST(GgufFileTest, GetterErrorsNameKeyAndTypes) {
  auto f = GgufFile::OpenBuffer(SmallGguf());
  ASSERT_TRUE(f.ok());
  const GgufFile& g = **f;
  auto missing = g.GetUint32("phi3.block_count");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(missing.status()), HasSubstr("metadata key phi3.block_count not found"));

  auto wrong = g.GetUint32("v.string");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(wrong.status()), HasSubstr("metadata key v.string has type string, expected u32"));
  EXPECT_THAT(Msg(g.GetString("v.u32").status()), HasSubstr("has type u32, expected string"));
  EXPECT_THAT(Msg(g.GetFloat32("v.i32").status()), HasSubstr("has type i32, expected f32 or f64"));
  EXPECT_THAT(Msg(g.GetBool("v.u8").status()), HasSubstr("expected bool"));
  EXPECT_THAT(Msg(g.GetStringArray("v.floats").status()),
              HasSubstr("has type array of f32, expected array of string"));
  EXPECT_THAT(Msg(g.GetFloat32Array("v.ints").status()), HasSubstr("expected array of f32"));
  EXPECT_THAT(Msg(g.GetInt32Array("v.strings").status()), HasSubstr("expected array of i32"));

  EXPECT_THAT(Msg(g.GetUint32("v.u64").status()), HasSubstr("value 1099511627776 does not fit u32"));
  EXPECT_THAT(Msg(g.GetUint32("v.i8").status()), HasSubstr("value -100 does not fit u32"));
  EXPECT_THAT(Msg(g.GetInt32("v.u32").status()), HasSubstr("does not fit i32"));
  EXPECT_EQ(g.GetUint64("v.i64").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*g.GetInt32("v.u16"), 60000);
  EXPECT_EQ(*g.GetUint64("v.u8"), 200u);

  EXPECT_FALSE(g.GetOptionalUint32("absent")->has_value());
  EXPECT_EQ(**g.GetOptionalUint32("v.u32"), 4000000000u);
  EXPECT_FALSE(g.GetOptionalUint32("v.string").ok());
  EXPECT_EQ(**g.GetOptionalString("v.string"), "h\xc3\xa9llo");
  EXPECT_EQ(**g.GetOptionalBool("v.bool"), true);
  EXPECT_EQ(**g.GetOptionalFloat32("v.f32"), 1.5f);
  EXPECT_TRUE(g.Has("v.nested"));
  EXPECT_FALSE(g.Has("v.none"));
}

}  // namespace
}  // namespace phi3
