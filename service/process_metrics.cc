#include "service/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

namespace phi3::service {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily One(const char* name, const char* help, MetricType type, double value) {
  MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  ClientMetric metric;
  if (type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

// Fields of /proc/<pid>/stat after the command name (which may hold spaces):
// fields[0] is field 3 (state) of proc(5).
std::vector<std::string> StatFields(const std::string& proc_dir) {
  std::ifstream in(proc_dir + "/stat");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> fields;
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return fields;
  std::istringstream rest(line.substr(paren + 1));
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

// The boot time (Unix seconds) from /proc/stat.
double BootTime() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double value = 0;
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

double Field(const std::vector<std::string>& fields, int proc5_number) {
  const size_t i = proc5_number - 3;
  return i < fields.size() ? std::stod(fields[i]) : 0;
}

}  // namespace

ProcessMetrics::ProcessMetrics(std::string version, std::string revision, std::string proc_dir)
    : version_(std::move(version)), revision_(std::move(revision)), proc_dir_(std::move(proc_dir)) {}

std::vector<MetricFamily> ProcessMetrics::Collect() const {
  std::vector<MetricFamily> out;
  const std::vector<std::string> stat = StatFields(proc_dir_);
  if (!stat.empty()) {
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page_bytes = static_cast<double>(sysconf(_SC_PAGESIZE));
    out.push_back(One("process_cpu_seconds_total", "Total user and system CPU time in seconds.",
                      MetricType::Counter, (Field(stat, 14) + Field(stat, 15)) / ticks));
    out.push_back(One("process_start_time_seconds",
                      "Start time of the process since the Unix epoch in seconds.",
                      MetricType::Gauge, BootTime() + Field(stat, 22) / ticks));
    out.push_back(One("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                      MetricType::Gauge, Field(stat, 23)));
    out.push_back(One("process_resident_memory_bytes", "Resident memory size in bytes.",
                      MetricType::Gauge, Field(stat, 24) * page_bytes));
  }
  std::error_code error;
  double open_fds = 0;
  for (std::filesystem::directory_iterator it(proc_dir_ + "/fd", error), end;
       !error && it != end; it.increment(error)) {
    ++open_fds;
  }
  out.push_back(One("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
                    open_fds));
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.push_back(One("process_max_fds", "Maximum number of open file descriptors.",
                      MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  MetricFamily build = One("phi3_build_info",
                           "The running build (value 1): project version and git revision.",
                           MetricType::Gauge, 1);
  build.metric[0].label = {{"version", version_}, {"revision", revision_}};
  out.push_back(std::move(build));
  return out;
}

}  // namespace phi3::service
