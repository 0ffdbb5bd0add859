#include "engine/gguf/gguf_writer.h"

#include <unistd.h>

#include <filesystem>

#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

using ::testing::HasSubstr;

TEST(GgufWriterTest, TensorBytes) {
  EXPECT_EQ(*GgufWriter::TensorBytes(TensorType::kF32, {3, 5}), 60u);
  EXPECT_EQ(*GgufWriter::TensorBytes(TensorType::kBF16, {7}), 14u);
  EXPECT_EQ(*GgufWriter::TensorBytes(TensorType::kQ4_0, {64, 3}), 3u * 2 * 18);
  EXPECT_EQ(*GgufWriter::TensorBytes(TensorType::kQ4_1, {32}), 20u);
  EXPECT_EQ(*GgufWriter::TensorBytes(TensorType::kQ5_K, {512, 2}), 2u * 2 * 176);
  EXPECT_EQ(*GgufWriter::TensorBytes(TensorType::kQ6_K, {256}), 210u);
  EXPECT_THAT(std::string(GgufWriter::TensorBytes(TensorType::kQ6_K, {128}).status().message()),
              HasSubstr("row length 128 is not a multiple of the block size 256 of q6_K"));
  EXPECT_FALSE(GgufWriter::TensorBytes(TensorType::kQ8_K, {256}).ok());
  EXPECT_FALSE(GgufWriter::TensorBytes(TensorType::kF32, {}).ok());
  EXPECT_FALSE(GgufWriter::TensorBytes(TensorType::kF32, {1, 1, 1, 1, 1}).ok());
  EXPECT_FALSE(GgufWriter::TensorBytes(TensorType::kF32, {0}).ok());
}

TEST(GgufWriterTest, RefusesInvalidInput) {
  GgufWriter w;
  ASSERT_TRUE(w.AddUint32("k", 1).ok());
  EXPECT_EQ(w.AddUint32("k", 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(w.AddUint32("general.alignment", 24).ok());
  EXPECT_FALSE(w.AddUint64("general.alignment", 64).ok());
  ASSERT_TRUE(w.AddTensor("t", TensorType::kF32, {4}, std::string(16, '\0')).ok());
  EXPECT_THAT(std::string(w.AddTensor("t", TensorType::kF32, {4}, std::string(16, '\0')).message()),
              HasSubstr("duplicate tensor t"));
  EXPECT_THAT(std::string(w.AddTensor("u", TensorType::kF32, {4}, std::string(15, '\0')).message()),
              HasSubstr("tensor u needs 16 bytes, got 15"));
}

TEST(GgufWriterTest, StreamingProducerMustWriteExactSize) {
  GgufWriter w;
  ASSERT_TRUE(w.AddTensor("t", TensorType::kF32, {4}, [](GgufByteSink sink) {
                 float x[3] = {1, 2, 3};
                 return sink(x, sizeof(x));
               }).ok());
  EXPECT_THAT(std::string(w.WriteToString().status().message()), HasSubstr("wrote 12 of 16 bytes"));
  GgufWriter over;
  ASSERT_TRUE(over.AddTensor("t", TensorType::kF32, {2}, [](GgufByteSink sink) {
                    float x[3] = {1, 2, 3};
                    return sink(x, sizeof(x));
                  }).ok());
  EXPECT_THAT(std::string(over.WriteToString().status().message()), HasSubstr("more than 8 bytes"));
}

TEST(GgufWriterTest, StreamsChunksToFile) {
  GgufWriter w;
  ASSERT_TRUE(w.AddString("general.name", "x").ok());
  ASSERT_TRUE(w.AddTensor("big", TensorType::kF32, {1024, 300}, [](GgufByteSink sink) {
                 std::vector<float> row(1024);
                 for (int r = 0; r < 300; ++r) {
                   for (int i = 0; i < 1024; ++i) row[i] = r + i * 1e-3f;
                   if (auto s = sink(row.data(), row.size() * 4); !s.ok()) return s;
                 }
                 return absl::OkStatus();
               }).ok());
  ASSERT_TRUE(w.AddTensor("small", TensorType::kF16, {3}, std::string(6, '\x01')).ok());
  const std::string path =
      ::testing::TempDir() + "/gguf_writer_test_" + std::to_string(getpid()) + ".gguf";
  ASSERT_TRUE(w.WriteToFile(path).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufTensor* big = (*f)->FindTensor("big");
  ASSERT_NE(big, nullptr);
  const float* data = reinterpret_cast<const float*>(big->data);
  EXPECT_EQ(data[299 * 1024 + 5], 299 + 5 * 1e-3f);
  EXPECT_EQ((*f)->FindTensor("small")->offset, 1024u * 300 * 4);
  EXPECT_EQ((*f)->file_size() % 32, 0u);
  std::filesystem::remove(path);
}

TEST(GgufWriterTest, FailedWriteLeavesNoFile) {
  GgufWriter w;
  ASSERT_TRUE(w.AddTensor("t", TensorType::kF32, {4}, [](GgufByteSink) {
                 return absl::InternalError("generator failed");
               }).ok());
  const std::string path =
      ::testing::TempDir() + "/gguf_writer_fail_" + std::to_string(getpid()) + ".gguf";
  EXPECT_EQ(w.WriteToFile(path).message(), "generator failed");
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(w.WriteToFile("/nonexistent-dir/x.gguf").code(), absl::StatusCode::kInvalidArgument);
}

TEST(GgufWriterTest, WritesVersion2) {
  auto f = GgufFile::OpenBuffer(testing::SmallGguf(2));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->version(), 2u);
}

}  // namespace
}  // namespace phi3
