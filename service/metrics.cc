#include "service/metrics.h"

#include <utility>

#include "prometheus/detail/builder.h"
#include "service/accounting.h"

namespace phi3::service {
namespace {

using prometheus::Histogram;

// Latency buckets (seconds) from 1 ms to 2 min.
Histogram::BucketBoundaries LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}
// Token-count buckets.
Histogram::BucketBoundaries LengthBuckets() {
  return {1, 4, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 131072};
}

}  // namespace

double Prices::InputCost(const Usage& usage) const {
  const int uncached = usage.prompt_tokens - usage.cached_prompt_tokens;
  return (uncached * input_per_million + usage.cached_prompt_tokens * cached_input_per_million) /
         1e6;
}

double Prices::OutputCost(const Usage& usage) const {
  return usage.completion_tokens * output_per_million / 1e6;
}

ServiceMetrics::ServiceMetrics(Prices prices, int max_tenants,
                               std::function<EngineStats()> stats, const ModelInfo& model)
    : prices_(prices),
      max_tenants_(max_tenants),
      stats_(std::move(stats)),
      registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  queue_wait_ = &BuildHistogram().Name("phi3_request_queue_wait_seconds")
                     .Help("Time from acceptance to first scheduling by the engine.").Register(r);
  ttft_ = &BuildHistogram().Name("phi3_request_time_to_first_token_seconds")
               .Help("Time from acceptance to the first sampled token.").Register(r);
  inter_token_ = &BuildHistogram().Name("phi3_request_inter_token_seconds")
                      .Help("Time between consecutive tokens of a stream.").Register(r);
  duration_ = &BuildHistogram().Name("phi3_request_duration_seconds")
                   .Help("End-to-end time of requests the engine ran.").Register(r);
  prompt_length_ = &BuildHistogram().Name("phi3_request_prompt_length_tokens")
                        .Help("Prompt length of requests the engine ran.").Register(r);
  completion_length_ = &BuildHistogram().Name("phi3_request_completion_length_tokens")
                            .Help("Completion length of requests the engine ran.").Register(r);
  inter_token_histogram_ = &inter_token_->Add({}, LatencyBuckets());

  requests_ = &BuildCounter().Name("phi3_requests_total")
                   .Help("Finished requests by tenant, finish reason and gRPC status code.")
                   .Register(r);
  prompt_tokens_ = &BuildCounter().Name("phi3_prompt_tokens_total")
                        .Help("Prompt tokens processed, by tenant.").Register(r);
  cached_prompt_tokens_ = &BuildCounter().Name("phi3_cached_prompt_tokens_total")
                               .Help("Prompt tokens served from the prefix cache, by tenant.")
                               .Register(r);
  completion_tokens_ = &BuildCounter().Name("phi3_completion_tokens_total")
                            .Help("Completion tokens sampled, by tenant.").Register(r);
  spend_ = &BuildCounter().Name("phi3_spend_usd_total")
                .Help("Spend in US dollars by tenant and type (input, output).").Register(r);
  prefills_ = &BuildCounter().Name("phi3_prefill_requests_total")
                   .Help("Finished prefill-only (warm-up) requests, by tenant; also counted "
                         "in phi3_requests_total.").Register(r);

  auto gauge = [&r](const char* name, const char* help) {
    return &BuildGauge().Name(name).Help(help).Register(r).Add({});
  };
  active_streams_ = gauge("phi3_active_streams", "Generation requests in progress (gRPC and HTTP).");
  running_ = gauge("phi3_engine_running_requests", "Requests in the engine's running batch.");
  waiting_ = gauge("phi3_engine_waiting_requests", "Requests waiting in the engine's queue.");
  kv_blocks_used_ = gauge("phi3_kv_cache_used_blocks", "KV cache blocks in use.");
  kv_blocks_total_ = gauge("phi3_kv_cache_capacity_blocks", "KV cache blocks in the pool.");
  kv_usage_ratio_ = gauge("phi3_kv_cache_usage_ratio", "Fraction of KV cache blocks in use.");
  prefix_hit_ratio_ = gauge("phi3_prefix_cache_hit_ratio",
                            "Prompt tokens served from the prefix cache / prompt tokens looked up.");
  auto counter = [&r](const char* name, const char* help) {
    return &BuildCounter().Name(name).Help(help).Register(r).Add({});
  };
  prefix_query_tokens_.counter = counter("phi3_prefix_cache_query_tokens_total",
                                         "Prompt tokens looked up in the prefix cache.");
  prefix_hit_tokens_.counter = counter("phi3_prefix_cache_hit_tokens_total",
                                       "Prompt tokens found in the prefix cache.");
  kv_evictions_.counter = counter("phi3_kv_cache_evictions_total", "Cached KV blocks evicted.");
  preemptions_.counter = counter("phi3_engine_preemptions_total", "Sequences preempted.");
  steps_.counter = counter("phi3_engine_steps_total", "Engine forward steps.");

  BuildGauge().Name("phi3_model_info").Help("The loaded model (value 1).").Register(r)
      .Add({{"name", model.name},
            {"architecture", model.architecture},
            {"quantization", model.quantization},
            {"sha256", model.file_sha256},
            {"context_size", std::to_string(model.context_size)},
            {"vocab_size", std::to_string(model.vocab_size)}})
      .Set(1);
}

std::string ServiceMetrics::TenantLabel(absl::string_view tenant) {
  absl::MutexLock lock(&mu_);
  auto it = tenants_.find(tenant);
  if (it != tenants_.end()) return *it;
  if (static_cast<int>(tenants_.size()) < max_tenants_) {
    return *tenants_.emplace(tenant).first;
  }
  return "other";
}

void ServiceMetrics::RecordFinish(absl::string_view tenant, FinishReason reason,
                                  absl::string_view code, const Usage& usage,
                                  const Timings& timings) {
  const std::string t = TenantLabel(tenant);
  requests_->Add({{"tenant", t}, {"finish_reason", ReasonLabel(reason)},
                  {"code", std::string(code)}}).Increment();
  prompt_tokens_->Add({{"tenant", t}}).Increment(usage.prompt_tokens);
  cached_prompt_tokens_->Add({{"tenant", t}}).Increment(usage.cached_prompt_tokens);
  completion_tokens_->Add({{"tenant", t}}).Increment(usage.completion_tokens);
  spend_->Add({{"tenant", t}, {"type", "input"}}).Increment(prices_.InputCost(usage));
  spend_->Add({{"tenant", t}, {"type", "output"}}).Increment(prices_.OutputCost(usage));
  queue_wait_->Add({}, LatencyBuckets()).Observe(absl::ToDoubleSeconds(timings.queue_wait));
  if (usage.completion_tokens > 0) {
    ttft_->Add({}, LatencyBuckets())
        .Observe(absl::ToDoubleSeconds(timings.time_to_first_token));
  }
  duration_->Add({}, LatencyBuckets()).Observe(absl::ToDoubleSeconds(timings.total));
  prompt_length_->Add({}, LengthBuckets()).Observe(usage.prompt_tokens);
  completion_length_->Add({}, LengthBuckets()).Observe(usage.completion_tokens);
}

void ServiceMetrics::RecordRejected(absl::string_view tenant, absl::string_view code) {
  requests_->Add({{"tenant", TenantLabel(tenant)}, {"finish_reason", "rejected"},
                  {"code", std::string(code)}}).Increment();
}

void ServiceMetrics::RecordPrefill(absl::string_view tenant) {
  prefills_->Add({{"tenant", TenantLabel(tenant)}}).Increment();
}

void ServiceMetrics::ObserveInterToken(absl::Duration gap) {
  inter_token_histogram_->Observe(absl::ToDoubleSeconds(gap));
}

void ServiceMetrics::AddActiveStreams(int delta) { active_streams_->Increment(delta); }

void ServiceMetrics::Mirrored::Update(int64_t value) const {
  if (value > last) counter->Increment(static_cast<double>(value - last));
  last = value;
}

std::vector<prometheus::MetricFamily> ServiceMetrics::Collect() const {
  absl::MutexLock lock(&collect_mu_);
  if (stats_) {
    const EngineStats s = stats_();
    running_->Set(s.running_requests);
    waiting_->Set(s.waiting_requests);
    kv_blocks_used_->Set(static_cast<double>(s.kv_blocks_used));
    kv_blocks_total_->Set(static_cast<double>(s.kv_blocks_total));
    kv_usage_ratio_->Set(s.kv_blocks_total > 0
                             ? static_cast<double>(s.kv_blocks_used) / s.kv_blocks_total
                             : 0.0);
    prefix_hit_ratio_->Set(s.prefix_cache_query_tokens > 0
                               ? static_cast<double>(s.prefix_cache_hit_tokens) /
                                     s.prefix_cache_query_tokens
                               : 0.0);
    prefix_query_tokens_.Update(s.prefix_cache_query_tokens);
    prefix_hit_tokens_.Update(s.prefix_cache_hit_tokens);
    kv_evictions_.Update(s.kv_evictions);
    preemptions_.Update(s.preemptions);
    steps_.Update(s.steps);
  }
  return registry_->Collect();
}

}  // namespace phi3::service
