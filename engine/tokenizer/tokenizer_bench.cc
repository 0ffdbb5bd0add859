// Tokenizer throughput: encodes/decodes a few MB of mixed text (English, code
// with indentation, CJK, emoji) and prints MB/s. Not a test; run by hand:
//   build/engine/tokenizer/tokenizer_bench [MB]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "engine/tokenizer/detokenizer.h"
#include "engine/tokenizer/tokenizer.h"

namespace {

std::string MakeText(size_t bytes) {
  const char* kParts[] = {
      "The quick brown fox jumps over the lazy dog. ", "Tokenization throughput matters for long prompts. ",
      "def forward(self, x):\n        return self.proj(x) + x\n", "\tif (a < b) {\n\t\treturn a;\n\t}\n",
      "机器学习模型的推理速度。", "🦙 llamas ", "    ", "\n", "résumé café naïve ", "1234567890 ",
  };
  std::mt19937 rng(1);
  std::string s;
  while (s.size() < bytes) s += kParts[rng() % (sizeof(kParts) / sizeof(kParts[0]))];
  return s;
}

double Seconds(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  const double mb = argc > 1 ? std::atof(argv[1]) : 4.0;
  const phi3::Tokenizer tok = phi3::Tokenizer::Phi3();
  const std::string text = MakeText(static_cast<size_t>(mb * 1e6));

  // Realistic inputs are many prompts of a few KB, not one huge string.
  std::vector<std::string> prompts;
  for (size_t i = 0; i < text.size(); i += 4096) prompts.push_back(text.substr(i, 4096));
  auto t0 = std::chrono::steady_clock::now();
  size_t num_tokens = 0;
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& p : prompts) {
    ids.push_back(tok.Encode(p, true, false));
    num_tokens += ids.back().size();
  }
  const double enc = Seconds(t0);

  t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> whole = tok.Encode(text, true, true);
  const double enc_whole = Seconds(t0);

  t0 = std::chrono::steady_clock::now();
  size_t decoded = 0;
  for (const auto& v : ids) decoded += tok.Decode(v).size();
  const double dec = Seconds(t0);

  t0 = std::chrono::steady_clock::now();
  phi3::StreamingDetokenizer stream(tok, {.replace_invalid_utf8 = true});
  size_t streamed = 0;
  for (int32_t id : whole) streamed += stream.Push(id).size();
  streamed += stream.Finish().size();
  const double str = Seconds(t0);

  std::printf("text %.1f MB, %zu tokens (%.2f bytes/token)\n", text.size() / 1e6, num_tokens,
              double(text.size()) / num_tokens);
  std::printf("encode, 4 KB prompts:      %7.2f MB/s  (%.0f tokens/s)\n", text.size() / 1e6 / enc,
              num_tokens / enc);
  std::printf("encode, one string:        %7.2f MB/s\n", text.size() / 1e6 / enc_whole);
  std::printf("decode:                    %7.2f MB/s\n", decoded / 1e6 / dec);
  std::printf("streaming detokenize:      %7.2f MB/s  (%.0f tokens/s)\n", streamed / 1e6 / str,
              whole.size() / str);
  return 0;
}
