// What the process is and uses, for /metrics: Prometheus' standard process_*
// metrics (prometheus-cpp has no process collector, so they are read from
// /proc/self at each scrape) and phi3_build_info.
//
//   process_resident_memory_bytes, process_virtual_memory_bytes,
//   process_cpu_seconds_total, process_start_time_seconds, process_open_fds,
//   process_max_fds; phi3_build_info{version, revision} 1.
//
// Thread safety: Collect may be called from any thread.
#ifndef PHI3_SERVICE_PROCESS_METRICS_H_
#define PHI3_SERVICE_PROCESS_METRICS_H_

#include <string>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace phi3::service {

class ProcessMetrics : public prometheus::Collectable {
 public:
  // `proc_dir` is /proc/self except in tests.
  ProcessMetrics(std::string version, std::string revision, std::string proc_dir = "/proc/self");

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const std::string version_;
  const std::string revision_;
  const std::string proc_dir_;
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_PROCESS_METRICS_H_
