// llama.cpp (the oracle, via tests/oracle/load_check.mjs) loads the files
// phi3-mkmodel writes, in every type, and sees the expected dimensions.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/tools/mkmodel/phi3_model_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

using ::testing::HasSubstr;

// Runs `cmd` and returns its stdout.
std::string RunCommand(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// The JSON line load_check.mjs printed for `path`.
std::string LineFor(const std::string& output, const std::string& path) {
  const size_t at = output.find("{\"path\":\"" + path + "\"");
  if (at == std::string::npos) return "";
  return output.substr(at, output.find('\n', at) - at);
}

TEST(MkmodelConformanceTest, LlamaCppLoadsEveryType) {
  const std::string dir = ::testing::TempDir() + "/mkmodel_conf_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::map<std::string, std::string> files;  // label -> path
  for (const char* type : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4_k", "q5_k", "q6_k",
                           "q4_k_m"}) {
    Phi3ModelOptions o;
    o.dims = *Phi3PresetDims("tiny");
    o.format = *ParseWeightFormat(type);
    o.seed = 3;
    files[type] = dir + "/tiny-" + type + ".gguf";
    ASSERT_TRUE(WritePhi3Model(o, files[type]).ok()) << type;
  }
  {
    Phi3ModelOptions o;
    o.dims = *Phi3PresetDims("tiny");
    o.seed = 3;
    o.split_qkv = true;
    o.added_token_kind = AddedTokenKind::kUserDefined;
    files["f32-split"] = dir + "/tiny-f32-split.gguf";
    ASSERT_TRUE(WritePhi3Model(o, files["f32-split"]).ok());
    o.split_qkv = false;
    o.dims = *Phi3PresetDims("phi3-mini-128k");
    o.dims.n_embd = 256;
    o.dims.n_ff = 512;
    o.dims.n_layer = 2;
    o.dims.n_head = o.dims.n_head_kv = 8;
    o.format = WeightFormat::kQ8_0;
    files["q8_0-128k"] = dir + "/tiny-128k.gguf";
    ASSERT_TRUE(WritePhi3Model(o, files["q8_0-128k"]).ok());
  }
  std::string cmd = absl::StrCat(PHI3_NODE, " ", PHI3_ORACLE_DIR, "/load_check.mjs");
  for (const auto& [label, path] : files) absl::StrAppend(&cmd, " ", path);
  const std::string output = RunCommand(cmd + " 2>&1");
  for (const auto& [label, path] : files) {
    const std::string line = LineFor(output, path);
    SCOPED_TRACE(label + ": " + line);
    ASSERT_THAT(line, HasSubstr("\"ok\":true")) << output;
    EXPECT_THAT(line, HasSubstr("\"n_vocab\":32064"));
    EXPECT_THAT(line, HasSubstr("\"n_embd\":256"));
    EXPECT_THAT(line, HasSubstr(label == "q8_0-128k" ? "\"n_ctx_train\":131072"
                                                     : "\"n_ctx_train\":4096"));
    EXPECT_THAT(line, HasSubstr("\"bos\":1,\"eos\":32000"));
  }
  EXPECT_THAT(LineFor(output, files["q4_k_m"]), HasSubstr("Q4_K - Medium"));
  EXPECT_THAT(LineFor(output, files["f16"]), HasSubstr("\"type\":\"phi3 ?B F16\""));
  // A split-QKV file holds the same weights as the fused one: llama.cpp must
  // pick the same next token from both.
  auto top = [&](const std::string& label) {
    const std::string line = LineFor(output, files[label]);
    const size_t at = line.find("\"top_token\":");
    return at == std::string::npos ? std::string("?") : line.substr(at, line.find(',', at) - at);
  };
  EXPECT_EQ(top("f32"), top("f32-split"));
  EXPECT_EQ(top("f32"), top("f16"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace phi3
