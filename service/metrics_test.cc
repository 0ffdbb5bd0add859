#include "service/metrics.h"

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "service/testing/metric_value.h"

namespace phi3::service {
namespace {

// Value of the counter/gauge/histogram `name` with exactly `labels`, or -1.
double Value(const std::vector<prometheus::MetricFamily>& families, const std::string& name,
             const std::map<std::string, std::string>& labels) {
  return testing::MetricValue(families, name, labels).value_or(-1);
}

TEST(Prices, InputOutputAndCachedDiscount) {
  Prices p{1.0, 0.5, 4.0};
  Usage u{1000, 400, 250};
  EXPECT_DOUBLE_EQ(p.InputCost(u), (600 * 1.0 + 400 * 0.5) / 1e6);
  EXPECT_DOUBLE_EQ(p.OutputCost(u), 250 * 4.0 / 1e6);
  EXPECT_DOUBLE_EQ(p.Cost(u), p.InputCost(u) + p.OutputCost(u));
  // Rounded to nano-dollars: 2 input + 5 output tokens sum to
  // 2.2000000000000003e-05 in binary; the cost is the double nearest 2.2e-05.
  Usage small;
  small.prompt_tokens = 2;
  small.completion_tokens = 5;
  EXPECT_NE(p.InputCost(small) + p.OutputCost(small), 22e-6);
  EXPECT_EQ(p.Cost(small), 22e-6);
}

TEST(ServiceMetrics, CountsPerTenantAndBoundsLabels) {
  EngineStats stats;
  stats.running_requests = 2;
  stats.waiting_requests = 3;
  stats.kv_blocks_total = 10;
  stats.kv_blocks_used = 4;
  stats.prefix_cache_query_tokens = 100;
  stats.prefix_cache_hit_tokens = 25;
  stats.steps = 7;
  ModelInfo info;
  info.name = "m";
  ServiceMetrics metrics(Prices{}, 2, [&] { return stats; }, info);
  Timings t{absl::Milliseconds(1), absl::Milliseconds(2), absl::Milliseconds(3)};
  metrics.RecordFinish("a", FinishReason::kLength, "OK", Usage{10, 4, 5}, t);
  metrics.RecordFinish("a", FinishReason::kCancelled, "CANCELLED", Usage{3, 0, 1}, t);
  metrics.RecordFinish("b", FinishReason::kStop, "OK", Usage{1, 0, 1}, t);
  metrics.RecordFinish("c", FinishReason::kStop, "OK", Usage{2, 0, 2}, t);  // over the cap
  metrics.RecordRejected("a", "INVALID_ARGUMENT");
  metrics.ObserveInterToken(absl::Milliseconds(5));

  auto f = metrics.Collect();
  EXPECT_EQ(Value(f, "phi3_prompt_tokens_total", {{"tenant", "a"}}), 13);
  EXPECT_EQ(Value(f, "phi3_cached_prompt_tokens_total", {{"tenant", "a"}}), 4);
  EXPECT_EQ(Value(f, "phi3_completion_tokens_total", {{"tenant", "a"}}), 6);
  EXPECT_EQ(Value(f, "phi3_completion_tokens_total", {{"tenant", "other"}}), 2);
  EXPECT_EQ(Value(f, "phi3_completion_tokens_total", {{"tenant", "c"}}), -1);
  EXPECT_DOUBLE_EQ(Value(f, "phi3_spend_usd_total", {{"tenant", "a"}, {"type", "input"}}),
                   (9 * 1.0 + 4 * 0.5) / 1e6);
  EXPECT_DOUBLE_EQ(Value(f, "phi3_spend_usd_total", {{"tenant", "a"}, {"type", "output"}}),
                   6 * 4.0 / 1e6);
  EXPECT_EQ(Value(f, "phi3_requests_total",
                  {{"tenant", "a"}, {"finish_reason", "cancelled"}, {"code", "CANCELLED"}}), 1);
  EXPECT_EQ(Value(f, "phi3_requests_total",
                  {{"tenant", "a"}, {"finish_reason", "rejected"}, {"code", "INVALID_ARGUMENT"}}),
            1);
  EXPECT_EQ(Value(f, "phi3_request_duration_seconds", {}), 4);
  EXPECT_EQ(Value(f, "phi3_request_inter_token_seconds", {}), 1);
  EXPECT_EQ(Value(f, "phi3_engine_running_requests", {}), 2);
  EXPECT_EQ(Value(f, "phi3_engine_waiting_requests", {}), 3);
  EXPECT_DOUBLE_EQ(Value(f, "phi3_kv_cache_usage_ratio", {}), 0.4);
  EXPECT_DOUBLE_EQ(Value(f, "phi3_prefix_cache_hit_ratio", {}), 0.25);
  EXPECT_EQ(Value(f, "phi3_engine_steps_total", {}), 7);
  stats.steps = 9;
  f = metrics.Collect();
  EXPECT_EQ(Value(f, "phi3_engine_steps_total", {}), 9);
}

}  // namespace
}  // namespace phi3::service
