// Reading one value back from what a prometheus::Collectable collects, for
// tests that check counters against what clients or the ledger saw.
#ifndef PHI3_SERVICE_TESTING_METRIC_VALUE_H_
#define PHI3_SERVICE_TESTING_METRIC_VALUE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "prometheus/metric_family.h"

namespace phi3::service::testing {

// The value of the metric `name` whose labels are exactly `labels`: a
// counter's or gauge's value, a histogram's sample count; nullopt when no
// such series was collected.
std::optional<double> MetricValue(const std::vector<prometheus::MetricFamily>& families,
                                  const std::string& name,
                                  const std::map<std::string, std::string>& labels);

}  // namespace phi3::service::testing

#endif  // PHI3_SERVICE_TESTING_METRIC_VALUE_H_
