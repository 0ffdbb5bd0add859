#include "engine/tools/bench/bench_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace phi3::bench {

double Median(std::vector<double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const size_t m = values.size() / 2;
  return values.size() % 2 ? values[m] : (values[m - 1] + values[m]) / 2;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  const int64_t idx = std::clamp<int64_t>(static_cast<int64_t>(rank) - 1, 0,
                                          static_cast<int64_t>(values.size()) - 1);
  return values[idx];
}

std::vector<int32_t> PromptTokens(int count, int salt) {
  std::vector<int32_t> out;
  out.reserve(std::max(count, 1));
  out.push_back(1);  // BOS
  // The same 32-bit LCG as bench.mjs (Math.imul there, wrap-around here).
  uint32_t x = static_cast<uint32_t>(12345 + salt * 7919);
  while (static_cast<int>(out.size()) < count) {
    x = x * 1103515245u + 12345u;
    out.push_back(300 + static_cast<int32_t>(x % 31000u));
  }
  return out;
}

TtftPrompts MakeTtftPrompts(int salt) {
  const std::vector<int32_t> prefix = PromptTokens(2000, 3 + salt);
  TtftPrompts p{prefix, prefix};
  // Suffixes drop their BOS: they continue the prefix.
  const std::vector<int32_t> s1 = PromptTokens(51, 4 + salt);
  const std::vector<int32_t> s2 = PromptTokens(51, 5 + salt);
  p.cold.insert(p.cold.end(), s1.begin() + 1, s1.end());
  p.warm.insert(p.warm.end(), s2.begin() + 1, s2.end());
  return p;
}

int64_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  int64_t kib = -1;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      kib = std::strtoll(line + 6, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

ReadShareStats ReadShare(const std::vector<double>& step_seconds,
                         const std::vector<double>& pass_bytes_s, int64_t bytes_per_step) {
  std::vector<double> decode, read, share;
  for (size_t i = 0; i < step_seconds.size() && i + 1 < pass_bytes_s.size(); ++i) {
    decode.push_back(static_cast<double>(bytes_per_step) / step_seconds[i]);
    read.push_back((pass_bytes_s[i] + pass_bytes_s[i + 1]) / 2);
    share.push_back(decode.back() / read.back());
  }
  return {Median(decode), Median(read), Median(share)};
}

}  // namespace phi3::bench
