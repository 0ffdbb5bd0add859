// Deterministic mutation testing of GgufFile::OpenBuffer: thousands of
// seeded corruptions (bit flips, truncations, insertions, overwrites of
// size fields with extreme values) of small valid files. Open must never
// crash and must return OK or an error with a meaningful code; when it
// returns OK every tensor view must lie inside the buffer. Built with
// ASan+UBSan (see CMakeLists.txt) so an out-of-bounds read fails the test.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_test_util.h"
#include "engine/gguf/gguf_writer.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

std::vector<std::string> Seeds() {
  std::vector<std::string> seeds = {testing::SmallGguf(3), testing::SmallGguf(2)};
  GgufWriter w;
  if (w.AddUint32("general.alignment", 64).ok()) testing::AddSmallContents(w);
  seeds.push_back(*w.WriteToString());
  return seeds;
}

std::string Mutate(const std::string& in, std::mt19937_64& rng) {
  std::string s = in;
  auto pick = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  static constexpr uint64_t kInteresting[] = {0, 1, 2, 3, 4, 5, 13, 31, 32, 63, 64, 255, 256,
                                              1ull << 31, 1ull << 32, 1ull << 62, 1ull << 63,
                                              ~0ull, ~0ull - 1, 0x7fffffffffffffffull};
  const int num_mutations = 1 + static_cast<int>(pick(4));
  for (int m = 0; m < num_mutations && !s.empty(); ++m) {
    switch (pick(6)) {
      case 0:  // bit flip
        s[pick(s.size())] ^= static_cast<char>(1u << pick(8));
        break;
      case 1:  // random byte
        s[pick(s.size())] = static_cast<char>(rng());
        break;
      case 2:  // truncate
        s.resize(pick(s.size()));
        break;
      case 3: {  // insert bytes
        std::string ins(1 + pick(16), '\0');
        for (char& c : ins) c = static_cast<char>(rng());
        s.insert(pick(s.size() + 1), ins);
        break;
      }
      case 4: {  // erase a range
        const size_t at = pick(s.size());
        s.erase(at, 1 + pick(32));
        break;
      }
      case 5: {  // an extreme value over a (possibly) size/count/offset field
        const uint64_t v = kInteresting[pick(std::size(kInteresting))];
        const size_t width = pick(2) ? 8 : 4;
        if (s.size() >= width) {
          const size_t at = pick(s.size() - width + 1);
          std::memcpy(s.data() + at, &v, width);
        }
        break;
      }
    }
  }
  return s;
}

TEST(GgufMutationTest, OpenNeverCrashesOnCorruptInput) {
  const std::vector<std::string> seeds = Seeds();
  std::mt19937_64 rng(0x9e3779b97f4a7c15ull);
  constexpr int kIterations = 20000;
  int num_ok = 0, num_dataloss = 0, num_unimplemented = 0;
  for (int i = 0; i < kIterations; ++i) {
    const std::string bytes = Mutate(seeds[i % seeds.size()], rng);
    auto f = GgufFile::OpenBuffer(bytes);
    if (!f.ok()) {
      const absl::StatusCode code = f.status().code();
      ASSERT_TRUE(code == absl::StatusCode::kDataLoss || code == absl::StatusCode::kUnimplemented)
          << "iteration " << i << ": " << f.status();
      ASSERT_FALSE(f.status().message().empty());
      (code == absl::StatusCode::kDataLoss ? num_dataloss : num_unimplemented)++;
      continue;
    }
    ++num_ok;
    const GgufFile& g = **f;
    ASSERT_EQ(g.data_offset() % g.alignment(), 0u);
    uint64_t checksum = 0;
    for (const GgufTensor& t : g.tensors()) {
      ASSERT_LE(g.data_offset() + t.offset + t.num_bytes, bytes.size()) << t.name;
      for (uint64_t b = 0; b < t.num_bytes; ++b) checksum += t.data[b];  // ASan checks bounds
    }
    for (const auto& [key, value] : g.metadata()) checksum += value.DebugString().size();
    (void)checksum;
  }
  // The mutations must exercise both outcomes, or the test proves little.
  EXPECT_GT(num_ok, kIterations / 50);
  EXPECT_GT(num_dataloss, kIterations / 2);
  EXPECT_GT(num_unimplemented, 0);
}

}  // namespace
}  // namespace phi3
