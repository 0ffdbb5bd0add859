// Small statistics and formatting helpers shared by phi3-bench's runners.
#ifndef PHI3_ENGINE_TOOLS_BENCH_BENCH_STATS_H_
#define PHI3_ENGINE_TOOLS_BENCH_BENCH_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace phi3::bench {

// Median of `values` (mean of the two middle values for an even count);
// NaN when empty.
double Median(std::vector<double> values);

// Nearest-rank percentile, p in [0, 100]; NaN when empty.
double Percentile(std::vector<double> values, double p);

// Deterministic prompt of `count` token ids: BOS (1) and then ordinary pieces
// in [300, 31300). The same (count, salt) gives the same ids as
// tests/oracle/bench.mjs's promptTokens, so both sides see one workload.
std::vector<int32_t> PromptTokens(int count, int salt);

// The `ttft` workload: a 2000-token prefix followed by two different
// 50-token suffixes (cold = prefix + first suffix, warm = prefix + second).
struct TtftPrompts {
  std::vector<int32_t> cold, warm;
};
TtftPrompts MakeTtftPrompts(int salt);

// tg128_vs_read's statistics. The measurement alternates read passes and
// decode steps, pass[0], step[0], pass[1], ..., step[n-1], pass[n]; step i
// moved bytes_per_step / step_seconds[i] and is set against the mean of its
// two adjacent passes. Medians over the n pairs (NaN when n == 0).
struct ReadShareStats {
  double decode_bytes_s = 0;  // median of the steps' rates
  double read_bytes_s = 0;    // median of the pairs' adjacent-pass means
  double share = 0;           // median of the per-pair decode / read
};
// REQUIRES: pass_bytes_s.size() == step_seconds.size() + 1.
ReadShareStats ReadShare(const std::vector<double>& step_seconds,
                         const std::vector<double>& pass_bytes_s, int64_t bytes_per_step);

// Resident set size of this process in bytes (VmRSS), or -1 if unknown.
int64_t ResidentBytes();

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_BENCH_STATS_H_
