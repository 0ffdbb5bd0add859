// Prometheus view of the usage ledger's backlog and health (phi3_ledger_*),
// read from UsageLedger::Stats() at each scrape.
#ifndef PHI3_SERVICE_LEDGER_METRICS_H_
#define PHI3_SERVICE_LEDGER_METRICS_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "service/ledger/usage_ledger.h"

namespace phi3::service {

class LedgerMetrics : public prometheus::Collectable {
 public:
  // `ledger` must outlive this object's registration.
  explicit LedgerMetrics(const ledger::UsageLedger* ledger) : ledger_(ledger) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const ledger::UsageLedger* const ledger_;
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_LEDGER_METRICS_H_
