#include "service/ledger_metrics.h"

#include <string>

namespace phi3::service {
namespace {

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return {name, help, type, {metric}};
}

}  // namespace

std::vector<prometheus::MetricFamily> LedgerMetrics::Collect() const {
  const ledger::LedgerStats s = ledger_->Stats();
  using prometheus::MetricType;
  return {
      Family("phi3_ledger_queue_depth", "Usage records waiting for the ledger's writer.",
             MetricType::Gauge, static_cast<double>(s.queue_depth)),
      Family("phi3_ledger_spilled_records",
             "Usage records in the spill file, not yet written back to the database.",
             MetricType::Gauge, static_cast<double>(s.spilled_pending)),
      Family("phi3_ledger_database_up", "1 if the last write to the ledger database succeeded.",
             MetricType::Gauge, s.database_up ? 1 : 0),
      Family("phi3_ledger_records_written_total",
             "Usage records written to the database (write-backs included).",
             MetricType::Counter, static_cast<double>(s.records_written)),
      Family("phi3_ledger_records_spilled_total",
             "Usage records written to the spill file while the database failed.",
             MetricType::Counter, static_cast<double>(s.records_spilled)),
      Family("phi3_ledger_write_errors_total", "Failed writes to the database or the spill file.",
             MetricType::Counter, static_cast<double>(s.write_errors)),
      Family("phi3_ledger_records_dropped_total",
             "Usage records stored nowhere (queue full, or the spill file failing too).",
             MetricType::Counter, static_cast<double>(s.records_dropped)),
      Family("phi3_ledger_corrupt_spill_lines_total",
             "Spill file lines that could not be read back.", MetricType::Counter,
             static_cast<double>(s.corrupt_spill_lines)),
  };
}

}  // namespace phi3::service
