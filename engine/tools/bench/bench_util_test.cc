#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/tools/bench/bench_report.h"
#include "engine/tools/bench/bench_result.h"
#include "engine/tools/bench/bench_stats.h"
#include "engine/tools/bench/compute_roofline.h"
#include "engine/tools/bench/flat_json.h"
#include "engine/tools/bench/mac_ceiling.h"
#include "engine/tools/bench/sweep_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3::bench {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(BenchResultTest, ParallelStreamsParsesParallelFiguresOnly) {
  EXPECT_EQ(ParallelStreams("parallel:16"), 16);
  EXPECT_EQ(ParallelStreams("parallel:1"), 1);
  EXPECT_EQ(ParallelStreams("parallel:0"), 0);
  EXPECT_EQ(ParallelStreams("parallel:-4"), 0);
  EXPECT_EQ(ParallelStreams("parallel:16x"), 0);
  EXPECT_EQ(ParallelStreams("parallel:"), 0);
  EXPECT_EQ(ParallelStreams("pp512"), 0);
  EXPECT_EQ(ParallelStreams("tg128"), 0);
}

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

// Step i is set against the mean of the passes before and after it.
TEST(BenchStatsTest, ReadSharePairsEachStepWithItsAdjacentPasses) {
  const ReadShareStats stats = ReadShare({0.5, 1.0, 0.25}, {4, 2, 2, 6}, 1);
  // decode {2, 1, 4}, read {3, 2, 4}, share {2/3, 1/2, 1}
  EXPECT_DOUBLE_EQ(stats.decode_bytes_s, 2);
  EXPECT_DOUBLE_EQ(stats.read_bytes_s, 3);
  EXPECT_DOUBLE_EQ(stats.share, 2.0 / 3);
  EXPECT_TRUE(std::isnan(ReadShare({}, {5}, 1).share));
}

// tg128_vs_read's JSON keys and human line (tests/bench/README.md lists them).
TEST(BenchReportTest, DecodeVsReadKeysAndLine) {
  FigureResult r;
  r.figure = kDecodeVsReadFigure;
  r.ours = {0.9, 0.8, 0.95};
  r.ours_runner = "model";
  r.ours_extras["decode_bytes_s"] = {40e9, 41e9, 39e9};
  r.ours_extras["read_bytes_s"] = {45e9, 44e9, 46e9};
  r.ours_extras["pairs"] = {32, 32, 32};
  EXPECT_EQ(FigureUnit(r.figure), "fraction");
  EXPECT_FALSE(LowerIsBetter(r.figure));
  const std::string json =
      FigureJson(r, "m.gguf", 2, 3, {{"read_pattern", JsonQuote("avx512, prefetcht0 +2 KiB")}});
  auto parsed = ParseFlatJson(json);
  ASSERT_TRUE(parsed.ok()) << json;
  EXPECT_EQ(parsed->String("figure"), "tg128_vs_read");
  EXPECT_EQ(parsed->String("unit"), "fraction");
  EXPECT_EQ(parsed->String("read_pattern"), "avx512, prefetcht0 +2 KiB");
  EXPECT_EQ(parsed->Number("ours"), 0.9);
  EXPECT_EQ(parsed->Number("ours_decode_bytes_s"), 40e9);
  EXPECT_EQ(parsed->Number("ours_read_bytes_s"), 45e9);
  EXPECT_EQ(parsed->Number("ours_pairs"), 32);
  EXPECT_THAT(json, HasSubstr("\"llama_cpp\":null"));
  EXPECT_EQ(DecodeVsReadLine(r, "avx512, prefetcht0 +2 KiB"),
            "tg128_vs_read (ours only; llama.cpp runs in another process): decode 40.0 GB/s vs "
            "read 45.0 GB/s (avx512, prefetcht0 +2 KiB) of the same seconds -> 0.90 per pair "
            "(medians, 32 pairs x 3 reps)\n");
}

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
                 .bf16_macs = 200e9,
                 .int8_peak_macs = 400e9,
                 .mac_level = "avx512",
                 .type_macs = {{"q4_0", 300e9}, {"q6_k", 150e9}}};
  std::vector<SweepRow> rows(3);
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
  rows[2].type = "q4_k_m";
  rows[2].figure = "parallel:16";
  rows[2].ours = 40;
  rows[2].llama = 20;
  rows[2].ceiling = 80;
  rows[2].ceiling_kind = "exact mix: q4_k 75%, q6_k 25%";
  const std::string table = SweepTable(host, rows);
  EXPECT_THAT(table, HasSubstr("AMD EPYC 9R45 (AVX-512 (vnni bf16), no AMX)"));
  EXPECT_THAT(table, HasSubstr("our kernels: avx512; llama.cpp CPU build: zen4"));
  EXPECT_THAT(table,
              HasSubstr("read bandwidth: 20.00 GB/s (threads 2, avx512, prefetcht0 +2 KiB)"));
  EXPECT_THAT(table, HasSubstr("int8 300 G/s with Q4_0's per-block mul + fma, "
                               "f32 FMA 100 G/s, bf16 vdpbf16ps 200 G/s"));
  EXPECT_THAT(table, HasSubstr("- exact per-type ceilings (threads 2, avx512 loops), G MAC/s: "
                               "q4_0 300 q6_k 150; bare int8 peak 400\n"));
  EXPECT_THAT(table, HasSubstr("| q4_k_m | parallel:16 | 40.00 | 20.00 | 2.00x | 50% | 25% | "
                               "80.00 tok/s (exact mix: q4_k 75%, q6_k 25%) |"));
  EXPECT_THAT(table,
              HasSubstr("| q8_0 | tg128 | 8.00 | 4.00 | 2.00x | 80% | 40% | 10.00 tok/s (bandwidth) |"));
  EXPECT_THAT(table, HasSubstr("| f16 | pp512 | 30.00 | - | - | - | - | - |"));
}

ComputeRoofline TwoTypeRoofline() {
  ComputeRoofline r;
  r.measured = true;
  r.level = "avx512";
  r.per_block_macs = 300;
  r.types = {{"q4_0", 300, "8 vpdpbusd + add + cvt + mul + fma /32"},
             {"q4_k", 200, "64 vpdpbusd ... /256"},
             {"q6_k", 100, "64 x (vpmaddubsw+vpdpwssd) ... /256"},
             {"f16", 100, "1 fma lane per MAC"}};
  return r;
}

// Batched figures are bounded by the rate of the type's own exact mix,
// named after the type and its instructions.
TEST(MacCeilingTest, PerWeightType) {
  ComputeRoofline r = TwoTypeRoofline();
  EXPECT_EQ(MacCeilingFor(r, "q4_0").macs_per_second, 300);
  EXPECT_EQ(MacCeilingFor(r, "q4_0").kind, "Q4_0 exact: 8 vpdpbusd + add + cvt + mul + fma /32");
  EXPECT_EQ(MacCeilingFor(r, "q6_k").macs_per_second, 100);
  EXPECT_EQ(MacCeilingFor(r, "f16").kind, "F16 exact: 1 fma lane per MAC");
  EXPECT_EQ(MacCeilingFor(r, "q8_0").macs_per_second, 0);  // not measured
  EXPECT_EQ(MacCeilingFor(r, "q8_0").kind, "");
  r.measured = false;
  EXPECT_EQ(MacCeilingFor(r, "q4_0").macs_per_second, 0);
}

// A mix costs the sum of its types' times: 300 Q4_K MACs at 200/s + 100
// Q6_K MACs at 100/s = 2.5 s for 400 MACs, 160 MAC/s (not the MAC-weighted
// mean of the rates, 175).
TEST(MacCeilingTest, ModelMixWeightsTimeByMacs) {
  const ComputeRoofline r = TwoTypeRoofline();
  const MacCeiling mix = ModelMacCeiling(r, {{"q4_k", 300}, {"q6_k", 100}});
  EXPECT_DOUBLE_EQ(mix.macs_per_second, 160);
  EXPECT_EQ(mix.kind, "exact mix: q4_k 75%, q6_k 25%");
  const MacCeiling one = ModelMacCeiling(r, {{"q4_0", 64}, {"q6_k", 0}});
  EXPECT_DOUBLE_EQ(one.macs_per_second, 300);
  EXPECT_EQ(one.kind, MacCeilingFor(r, "q4_0").kind);
  // A type without a rate leaves the model without a ceiling.
  EXPECT_EQ(ModelMacCeiling(r, {{"q4_k", 300}, {"q8_0", 1}}).macs_per_second, 0);
  EXPECT_EQ(ModelMacCeiling(r, {}).macs_per_second, 0);
}

TEST(MacCeilingTest, TypeCeilingLinesNameEveryType) {
  const std::string lines = TypeCeilingLines(TwoTypeRoofline());
  EXPECT_THAT(lines, HasSubstr("q4_k"));
  EXPECT_THAT(lines, HasSubstr("Q6_K exact: 64 x (vpmaddubsw+vpdpwssd) ... /256"));
}

constexpr char kBf16Kind[] = "BF16 exact: vdpbf16ps, 2 MACs per f32 lane";

// 16 streams read the weights once per step: at 5.17 decode tok/s of
// bandwidth they cannot pass 16 x 5.17 = 82.72 tok/s, below the 110.42 of
// compute, so bandwidth binds and the compute value stays in the kind.
TEST(BatchedRooflineTest, BandwidthBindsWhenNTimesDecodeIsLower) {
  const BatchedRoofline r = BatchedRooflineOf(110.42, kBf16Kind, 5.17, 16);
  EXPECT_DOUBLE_EQ(r.tok_s, 16 * 5.17);
  EXPECT_TRUE(r.bandwidth_bound);
  EXPECT_EQ(r.bound(), "bandwidth");
  EXPECT_DOUBLE_EQ(r.compute_tok_s, 110.42);
  EXPECT_DOUBLE_EQ(r.bandwidth_tok_s, 16 * 5.17);
  EXPECT_EQ(r.kind,
            "bandwidth: 16 x 5.17 tok/s; compute 110.42 tok/s, BF16 exact: vdpbf16ps, 2 MACs "
            "per f32 lane");
}

TEST(BatchedRooflineTest, ComputeBindsWhenLower) {
  const BatchedRoofline r = BatchedRooflineOf(110.42, kBf16Kind, 9.7, 16);
  EXPECT_DOUBLE_EQ(r.tok_s, 110.42);
  EXPECT_FALSE(r.bandwidth_bound);
  EXPECT_EQ(r.bound(), "compute");
  EXPECT_DOUBLE_EQ(r.bandwidth_tok_s, 16 * 9.7);
  EXPECT_EQ(r.kind, absl::StrCat(kBf16Kind, "; bandwidth 16 x 9.70 = 155.20 tok/s"));
  // pp512: 512 tokens per read of the weights.
  const BatchedRoofline pp = BatchedRooflineOf(110.42, kBf16Kind, 5.17, 512);
  EXPECT_EQ(pp.bound(), "compute");
  EXPECT_DOUBLE_EQ(pp.bandwidth_tok_s, 512 * 5.17);
  EXPECT_EQ(pp.kind, absl::StrCat(kBf16Kind, "; bandwidth 512 x 5.17 = 2647.04 tok/s"));
  // A tie goes to compute.
  EXPECT_EQ(BatchedRooflineOf(80, "c", 5, 16).bound(), "compute");
}

// Without a bandwidth measurement the roofline is the compute ceiling, named
// as before; without a compute ceiling, the bandwidth one, saying so.
TEST(BatchedRooflineTest, MissingCeilingFallsBackToTheOther) {
  const BatchedRoofline no_bw = BatchedRooflineOf(110.42, kBf16Kind, 0, 16);
  EXPECT_DOUBLE_EQ(no_bw.tok_s, 110.42);
  EXPECT_EQ(no_bw.bound(), "compute");
  EXPECT_EQ(no_bw.kind, kBf16Kind);
  EXPECT_EQ(no_bw.bandwidth_tok_s, 0);
  const BatchedRoofline no_compute = BatchedRooflineOf(0, "", 5.17, 16);
  EXPECT_DOUBLE_EQ(no_compute.tok_s, 16 * 5.17);
  EXPECT_EQ(no_compute.bound(), "bandwidth");
  EXPECT_EQ(no_compute.kind, "bandwidth: 16 x 5.17 tok/s; compute not measured");
  const BatchedRoofline none = BatchedRooflineOf(0, "", -1, 16);
  EXPECT_EQ(none.tok_s, 0);
  EXPECT_EQ(none.kind, "");
}

// A batched row's "% of roofline" is against the binding ceiling, and its
// roofline cell names both.
TEST(BatchedRooflineTest, SweepRowSharesTheBindingRoofline) {
  const BatchedRoofline roofline = BatchedRooflineOf(110.42, kBf16Kind, 5.17, 16);
  SweepRow row;
  row.type = "bf16";
  row.figure = "parallel:16";
  row.ours = 31.1;
  row.llama = 5.96;
  row.ceiling = roofline.tok_s;
  row.ceiling_kind = roofline.kind;
  EXPECT_THAT(SweepTable(SweepHost{}, {row}),
              HasSubstr("| bf16 | parallel:16 | 31.10 | 5.96 | 5.22x | 38% | 7% | 82.72 tok/s "
                        "(bandwidth: 16 x 5.17 tok/s; compute 110.42 tok/s, BF16 exact: "
                        "vdpbf16ps, 2 MACs per f32 lane) |"));
}

}  // namespace
}  // namespace phi3::bench
