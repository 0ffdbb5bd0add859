#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/tools/bench/bench_stats.h"
#include "engine/tools/bench/compute_roofline.h"
#include "engine/tools/bench/flat_json.h"
#include "engine/tools/bench/sweep_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3::bench {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(BenchStatsTest, MedianOddEvenEmpty) {
  EXPECT_EQ(Median({3, 1, 2}), 2);
  EXPECT_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_TRUE(std::isnan(Median({})));
}

TEST(BenchStatsTest, NearestRankPercentile) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(101 - i);
  EXPECT_EQ(Percentile(v, 50), 50);
  EXPECT_EQ(Percentile(v, 99), 99);
  EXPECT_EQ(Percentile(v, 100), 100);
  EXPECT_EQ(Percentile(v, 0), 1);
  EXPECT_EQ(Percentile({7}, 99), 7);
}

// The ids must equal tests/oracle/bench.mjs's promptTokens (values printed by
// node), or the two sides would not run one workload.
TEST(BenchStatsTest, PromptTokensMatchBenchMjs) {
  EXPECT_THAT(PromptTokens(8, 1), ElementsAre(1, 28349, 8042, 7755, 6032, 29113, 21694, 27623));
  const std::vector<int32_t> long_prompt = PromptTokens(2000, 3003);
  ASSERT_EQ(long_prompt.size(), 2000u);
  EXPECT_THAT(std::vector<int32_t>(long_prompt.end() - 3, long_prompt.end()),
              ElementsAre(5559, 8244, 5021));
  EXPECT_THAT(PromptTokens(1, 5), ElementsAre(1));
}

TEST(BenchStatsTest, TtftPromptsShareTheirPrefixOnly) {
  const TtftPrompts p = MakeTtftPrompts(7);
  const std::vector<int32_t> prefix = PromptTokens(2000, 10);
  ASSERT_EQ(p.cold.size(), 2050u);
  ASSERT_EQ(p.warm.size(), 2050u);
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), p.cold.begin()));
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), p.warm.begin()));
  const std::vector<int32_t> s1 = PromptTokens(51, 11);
  EXPECT_TRUE(std::equal(s1.begin() + 1, s1.end(), p.cold.begin() + 2000));  // no second BOS
  EXPECT_NE(p.cold[2000], p.warm[2000]);
}

TEST(BenchStatsTest, ResidentBytesIsPositive) { EXPECT_GT(ResidentBytes(), 0); }

TEST(FlatJsonTest, ParsesBenchMjsReply) {
  auto r = ParseFlatJson(
      R"({"figure":"parallel:4","value":130.5,"itl_p99_ms":9.5e1,"ok":true,"no":false,)"
      R"("n":null,"nested":{"a":[1,{"b":"}"}]},"s":"a\"b\\c\u00e9"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->String("figure"), "parallel:4");
  EXPECT_EQ(r->Number("value"), 130.5);
  EXPECT_EQ(r->Number("itl_p99_ms"), 95);
  EXPECT_EQ(r->Number("ok"), 1);
  EXPECT_EQ(r->Number("no"), 0);
  EXPECT_FALSE(r->Number("n").has_value());
  EXPECT_FALSE(r->Number("nested").has_value());
  EXPECT_EQ(r->String("s"), "a\"b\\c\xc3\xa9");
  EXPECT_EQ(r->String("missing"), "");
}

TEST(FlatJsonTest, RejectsMalformed) {
  for (const char* bad : {"", "[]", "{", R"({"a")", R"({"a":})", R"({"a":1,})", R"({"a":1} x)",
                          R"({"a":{"b":1})", R"({a:1})"}) {
    auto r = ParseFlatJson(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    }
  }
  EXPECT_TRUE(ParseFlatJson(" { } ").ok());
}

TEST(FlatJsonTest, QuoteAndNumber) {
  EXPECT_EQ(JsonQuote("a\"b\\\n"), R"("a\"b\\\u000a")");
  EXPECT_EQ(JsonNumber(NAN), "null");
  EXPECT_EQ(JsonNumber(INFINITY), "null");
  EXPECT_EQ(JsonNumber(1.5), "1.5");
  EXPECT_EQ(JsonNumber(1610612736), "1610612736");
}

// The sweep table names the host and gives each row its ratio and both
// sides' shares of the row's ceiling; unknown values print as "-".
TEST(SweepTableTest, HostHeaderRatiosAndRooflineShares) {
  SweepHost host{.date = "2026-12-03T20:00:00Z",
                 .cpu = "AMD EPYC 9R45",
                 .cpu_class = "AVX-512 (vnni bf16), no AMX",
                 .simd_level = "avx512",
                 .llama_variant = "zen4",
                 .load_average = "1.00 2.00 3.00",
                 .threads = 2,
                 .reps = 3,
                 .read_bandwidth = 20e9,
                 .read_pattern = "avx512, prefetcht0 +2 KiB",
                 .int8_macs = 300e9,
                 .fma_macs = 100e9,
                 .bf16_macs = 200e9};
  std::vector<SweepRow> rows(2);
  rows[0].type = "q8_0";
  rows[0].figure = "tg128";
  rows[0].ours = 8;
  rows[0].llama = 4;
  rows[0].ceiling = 10;
  rows[0].ceiling_kind = "bandwidth";
  rows[1].type = "f16";
  rows[1].figure = "pp512";
  rows[1].ours = 30;
  rows[1].llama = NAN;
  const std::string table = SweepTable(host, rows);
  EXPECT_THAT(table, HasSubstr("AMD EPYC 9R45 (AVX-512 (vnni bf16), no AMX)"));
  EXPECT_THAT(table, HasSubstr("our kernels: avx512; llama.cpp CPU build: zen4"));
  EXPECT_THAT(table,
              HasSubstr("read bandwidth: 20.00 GB/s (threads 2, avx512, prefetcht0 +2 KiB)"));
  EXPECT_THAT(table, HasSubstr("int8 300 G/s with a mul + fma per 8 vpdpbusd, f32 FMA 100 G/s, "
                               "bf16 vdpbf16ps 200 G/s"));
  EXPECT_THAT(table,
              HasSubstr("| q8_0 | tg128 | 8.00 | 4.00 | 2.00x | 80% | 40% | 10.00 tok/s (bandwidth) |"));
  EXPECT_THAT(table, HasSubstr("| f16 | pp512 | 30.00 | - | - | - | - | - |"));
}

// Batched figures are bounded by the multiply-adds the type's kernels run:
// BF16 by vdpbf16ps where it was measured, else by f32 FMAs like F16.
TEST(MacCeilingTest, PerWeightType) {
  ComputeRoofline r{.measured = true, .peak_macs = 400, .per_block_macs = 300, .fma_macs = 100,
                    .bf16_macs = 200};
  EXPECT_EQ(MacCeilingFor(r, "q4_0").macs_per_second, 300);
  EXPECT_STREQ(MacCeilingFor(r, "q4_0").kind, "int8 MACs");
  EXPECT_EQ(MacCeilingFor(r, "f16").macs_per_second, 100);
  EXPECT_STREQ(MacCeilingFor(r, "f16").kind, "f32 FMAs");
  EXPECT_EQ(MacCeilingFor(r, "bf16").macs_per_second, 200);
  EXPECT_STREQ(MacCeilingFor(r, "bf16").kind, "vdpbf16ps");
  r.bf16_macs = 0;  // no AVX512_BF16: BF16 runs on fmas
  EXPECT_EQ(MacCeilingFor(r, "bf16").macs_per_second, 100);
  r.measured = false;
  EXPECT_EQ(MacCeilingFor(r, "q4_0").macs_per_second, 0);
}

}  // namespace
}  // namespace phi3::bench
