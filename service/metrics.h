// Prometheus metrics of the service: latency and length histograms,
// per-tenant token and spend counters, engine gauges and model info.
//
// Every finished request is recorded exactly once (RecordFinish or
// RecordRejected), so the counters equal the sum of the usage reported to
// clients, cancelled requests included.
//
// Thread safety: all methods may be called from any thread.
#ifndef PHI3_SERVICE_METRICS_H_
#define PHI3_SERVICE_METRICS_H_

#include <functional>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "service/usd.h"

namespace phi3::service {

// US dollars per million tokens.
struct Prices {
  double input_per_million = 1.0;
  double cached_input_per_million = 0.5;  // prompt tokens served from the prefix cache
  double output_per_million = 4.0;

  double InputCost(const Usage& usage) const;
  double OutputCost(const Usage& usage) const;
  // InputCost + OutputCost, rounded to whole nano-dollars (usd.h).
  double Cost(const Usage& usage) const {
    return RoundUsd(InputCost(usage) + OutputCost(usage));
  }
};

class ServiceMetrics : public prometheus::Collectable {
 public:
  // `stats` is called at each scrape to refresh the engine gauges; `max_tenants`
  // bounds the tenant label values (later tenants are counted as "other").
  ServiceMetrics(Prices prices, int max_tenants, std::function<EngineStats()> stats,
                 const ModelInfo& model);

  const Prices& prices() const { return prices_; }

  // A request the engine finished (any reason). `code` is the gRPC status
  // code name the call ends with.
  void RecordFinish(absl::string_view tenant, FinishReason reason, absl::string_view code,
                    const Usage& usage, const Timings& timings);
  // A request refused before it reached the engine (auth, validation, queue full).
  void RecordRejected(absl::string_view tenant, absl::string_view code);
  // A finished prefill_only (warm-up) request, in addition to its RecordFinish.
  void RecordPrefill(absl::string_view tenant);
  void ObserveInterToken(absl::Duration gap);
  void AddActiveStreams(int delta);

  // prometheus::Collectable: refreshes the engine gauges, then collects.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string TenantLabel(absl::string_view tenant);

  const Prices prices_;
  const int max_tenants_;
  const std::function<EngineStats()> stats_;
  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Family<prometheus::Histogram>* queue_wait_;
  prometheus::Family<prometheus::Histogram>* ttft_;
  prometheus::Family<prometheus::Histogram>* inter_token_;
  prometheus::Family<prometheus::Histogram>* duration_;
  prometheus::Family<prometheus::Histogram>* prompt_length_;
  prometheus::Family<prometheus::Histogram>* completion_length_;
  prometheus::Histogram* inter_token_histogram_;

  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Counter>* prompt_tokens_;
  prometheus::Family<prometheus::Counter>* cached_prompt_tokens_;
  prometheus::Family<prometheus::Counter>* completion_tokens_;
  prometheus::Family<prometheus::Counter>* spend_;
  prometheus::Family<prometheus::Counter>* prefills_;

  prometheus::Gauge* active_streams_;
  prometheus::Gauge* running_;
  prometheus::Gauge* waiting_;
  prometheus::Gauge* kv_blocks_used_;
  prometheus::Gauge* kv_blocks_total_;
  prometheus::Gauge* kv_usage_ratio_;
  prometheus::Gauge* prefix_hit_ratio_;
  // Cumulative engine counts, mirrored by adding the change since the last
  // scrape (guarded by collect_mu_).
  struct Mirrored {
    prometheus::Counter* counter = nullptr;
    mutable int64_t last = 0;
    void Update(int64_t value) const;
  };
  Mirrored prefix_query_tokens_, prefix_hit_tokens_, kv_evictions_, preemptions_, steps_;

  absl::Mutex mu_;
  absl::flat_hash_set<std::string> tenants_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex collect_mu_;
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_METRICS_H_
