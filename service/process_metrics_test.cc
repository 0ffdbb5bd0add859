#include "service/process_metrics.h"

#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace phi3::service {
namespace {

std::map<std::string, double> Values(const std::vector<prometheus::MetricFamily>& families) {
  std::map<std::string, double> values;
  for (const auto& f : families) {
    const auto& m = f.metric.at(0);
    values[f.name] = f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
  }
  return values;
}

TEST(ProcessMetrics, ReadsThisProcess) {
  ProcessMetrics metrics("1.2.3", "abc");
  // Burn a little CPU and memory so the figures are visibly non-zero.
  std::vector<char> block(32 << 20, 1);
  volatile double sink = 0;
  for (int i = 0; i < 20000000; ++i) sink = sink + i * 0.5;
  const std::map<std::string, double> v = Values(metrics.Collect());
  EXPECT_GT(v.at("process_resident_memory_bytes"), 32 << 20);
  EXPECT_GE(v.at("process_virtual_memory_bytes"), v.at("process_resident_memory_bytes"));
  EXPECT_GT(v.at("process_cpu_seconds_total"), 0);
  const double now = static_cast<double>(time(nullptr));
  EXPECT_GT(v.at("process_start_time_seconds"), now - 600);
  EXPECT_LE(v.at("process_start_time_seconds"), now + 1);
  EXPECT_GE(v.at("process_open_fds"), 3);
  EXPECT_GE(v.at("process_max_fds"), v.at("process_open_fds"));
  EXPECT_EQ(v.at("phi3_build_info"), 1);
  EXPECT_EQ(block[12345], 1);
}

TEST(ProcessMetrics, BuildInfoLabels) {
  for (const auto& f : ProcessMetrics("1.2.3", "abc").Collect()) {
    if (f.name != "phi3_build_info") continue;
    ASSERT_EQ(f.metric.at(0).label.size(), 2u);
    EXPECT_EQ(f.metric[0].label[0].value, "1.2.3");
    EXPECT_EQ(f.metric[0].label[1].value, "abc");
    return;
  }
  ADD_FAILURE() << "no phi3_build_info";
}

TEST(ProcessMetrics, MissingProcDirGivesNoProcessFigures) {
  const std::map<std::string, double> v =
      Values(ProcessMetrics("1", "r", "/nonexistent/proc").Collect());
  EXPECT_EQ(v.count("process_cpu_seconds_total"), 0u);
  EXPECT_EQ(v.at("process_open_fds"), 0);
}

}  // namespace
}  // namespace phi3::service
