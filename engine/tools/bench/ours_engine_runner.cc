// OursRunner over phi3::Engine: what the service gets, scheduler included.
#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "engine/engine.h"
#include "engine/gguf/gguf_file.h"
#include "engine/model/phi3_hparams.h"
#include "engine/model/phi3_model.h"
#include "engine/tools/bench/bench_result.h"
#include "engine/tools/bench/bench_stats.h"
#include "engine/tools/bench/ours_runner.h"

namespace phi3::bench {
namespace {

double NowMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Records when each token arrives; never blocks the engine loop.
class TimingSink : public TokenSink {
 public:
  bool OnToken(const TokenEvent& event) override {
    absl::MutexLock lock(&mu_);
    stamps_.push_back(NowMs());
    return true;
  }
  void OnFinish(const FinishEvent& event) override {
    {
      absl::MutexLock lock(&mu_);
      finish_ = event;
    }
    done_.Notify();
  }
  void Wait() { done_.WaitForNotification(); }
  std::vector<double> stamps() {
    absl::MutexLock lock(&mu_);
    return stamps_;
  }
  FinishEvent finish() {
    absl::MutexLock lock(&mu_);
    return finish_;
  }

 private:
  absl::Mutex mu_;
  std::vector<double> stamps_ ABSL_GUARDED_BY(mu_);  // ms, steady clock
  FinishEvent finish_ ABSL_GUARDED_BY(mu_);
  absl::Notification done_;
};

class EngineRunner : public OursRunner {
 public:
  EngineRunner(const OursOptions& options, std::unique_ptr<Engine> engine)
      : options_(options), engine_(std::move(engine)) {}

  std::string name() const override { return "engine"; }

  absl::StatusOr<Measurement> Run(const std::string& figure) override {
    salt_ = 1000 * run_count_++;
    if (figure == "tg128") return Decode(8, 128);
    if (figure == "tg128@2048") return Decode(2048, 128);
    if (figure == "pp512") return Prefill(512);
    if (figure == "ttft") return Ttft();
    if (const int n = ParallelStreams(figure); n > 0) return Parallel(n);
    return absl::UnimplementedError(absl::StrCat("engine runner: no figure \"", figure, "\""));
  }

  absl::Status Warmup() {
    auto sinks = Generate({PromptTokens(8, 99)}, 4);
    return sinks.status();
  }

 private:
  // Submits every prompt at once (greedy, ignore_eos, max_tokens each) and
  // waits for all of them.
  absl::StatusOr<std::vector<std::shared_ptr<TimingSink>>> Generate(
      const std::vector<std::vector<int32_t>>& prompts, int max_tokens,
      std::vector<double>* submit_ms = nullptr) {
    std::vector<std::shared_ptr<TimingSink>> sinks;
    for (const auto& prompt : prompts) {
      GenerateRequest request;
      request.prompt_tokens = prompt;
      request.sampling.temperature = 0;
      request.stop.max_tokens = max_tokens;
      request.stop.ignore_eos = true;
      request.tenant = "bench";
      auto sink = std::make_shared<TimingSink>();
      if (submit_ms != nullptr) submit_ms->push_back(NowMs());
      auto id = engine_->Submit(std::move(request), sink);
      if (!id.ok()) {
        for (auto& s : sinks) s->Wait();
        return id.status();
      }
      sinks.push_back(std::move(sink));
    }
    for (auto& s : sinks) s->Wait();
    for (auto& s : sinks) {
      const FinishEvent f = s->finish();
      if (f.reason == FinishReason::kError) return f.status;
      if (f.reason != FinishReason::kLength) {
        return absl::InternalError(absl::StrCat("engine finished a bench request with ",
                                                FinishReasonName(f.reason)));
      }
    }
    return sinks;
  }

  // One extra token: the first comes from the prefill step, so the last
  // `count` gaps are `count` single-token decode steps, as in bench.mjs.
  absl::StatusOr<Measurement> Decode(int prompt_len, int count) {
    auto sinks = Generate({PromptTokens(prompt_len, 1 + salt_)}, count + 1);
    if (!sinks.ok()) return sinks.status();
    const std::vector<double> t = (*sinks)[0]->stamps();
    const double ms = t.back() - t.front();
    Measurement m;
    m.value = count / (ms / 1000);
    m.extras["ms"] = ms;
    return m;
  }

  // Submit -> first token of a 512-token prompt (the prompt's prefill in
  // chunks of max_batched_tokens, plus one sampling).
  absl::StatusOr<Measurement> Prefill(int count) {
    std::vector<double> submit;
    auto sinks = Generate({PromptTokens(count, 2 + salt_)}, 1, &submit);
    if (!sinks.ok()) return sinks.status();
    const double ms = (*sinks)[0]->stamps().front() - submit[0];
    Measurement m;
    m.value = count / (ms / 1000);
    m.extras["ms"] = ms;
    return m;
  }

  // n streams with 8-token prompts; throughput counted from the moment every
  // stream has its first token (prefills done), like bench.mjs which
  // prefills untimed.
  absl::StatusOr<Measurement> Parallel(int n) {
    const int g = options_.parallel_tokens;
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < n; ++i) prompts.push_back(PromptTokens(8, 100 + i + salt_));
    auto sinks = Generate(prompts, g + 1);
    if (!sinks.ok()) return sinks.status();
    double t0 = 0, t1 = 0;
    std::vector<std::vector<double>> stamps;
    for (auto& s : *sinks) {
      stamps.push_back(s->stamps());
      t0 = std::max(t0, stamps.back().front());
      t1 = std::max(t1, stamps.back().back());
    }
    int64_t tokens = 0;
    std::vector<double> gaps;
    for (const auto& t : stamps) {
      for (size_t i = 1; i < t.size(); ++i) {
        gaps.push_back(t[i] - t[i - 1]);
        if (t[i] > t0) ++tokens;
      }
    }
    Measurement m;
    m.value = tokens / ((t1 - t0) / 1000);
    m.extras["ms"] = t1 - t0;
    m.extras["itl_p50_ms"] = Percentile(gaps, 50);
    m.extras["itl_p99_ms"] = Percentile(gaps, 99);
    return m;
  }

  // 2000-token prefix + 50-token suffix: cold (fresh prefix) then warm (same
  // prefix, another suffix; the prefix cache serves the first 2000 tokens).
  absl::StatusOr<Measurement> Ttft() {
    const TtftPrompts prompts = MakeTtftPrompts(salt_);
    double ms[2];
    int idx = 0;
    for (const auto* prompt : {&prompts.cold, &prompts.warm}) {
      std::vector<double> submit;
      auto sinks = Generate({*prompt}, 1, &submit);
      if (!sinks.ok()) return sinks.status();
      ms[idx++] = (*sinks)[0]->stamps().front() - submit[0];
    }
    Measurement m;
    m.value = ms[1] / ms[0];
    m.extras["cold_ms"] = ms[0];
    m.extras["warm_ms"] = ms[1];
    return m;
  }

  const OursOptions options_;
  std::unique_ptr<Engine> engine_;
  int run_count_ = 0;
  int salt_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<OursRunner>> NewEngineRunner(const OursOptions& options) {
  auto file = GgufFile::Open(options.model_path);
  if (!file.ok()) return file.status();
  auto hparams = ReadPhi3Hparams(**file);
  if (!hparams.ok()) return hparams.status();
  EngineOptions engine_options;
  engine_options.model_path = options.model_path;
  engine_options.num_threads = options.num_threads;
  engine_options.context_size = 0;  // min(kDefaultContextSize, trained)
  engine_options.max_running_sequences =
      std::max(engine_options.max_running_sequences, options.max_streams);
  engine_options.max_waiting_requests =
      std::max(engine_options.max_waiting_requests, options.max_streams);
  // KV for the largest figure: tg128@2048 holds one ~2.2k sequence, ttft
  // keeps two ~2k prompts cached, parallel:N holds N short streams. Sized in
  // tokens (f16 is 384 KiB per token at phi3-mini dims), not in contexts.
  const int64_t stream_tokens =
      static_cast<int64_t>(options.max_streams) * (8 + options.parallel_tokens + 32);
  // The Engine wants room for at least one full context.
  const int64_t context = std::min(kDefaultContextSize, hparams->context_length);
  const int64_t tokens =
      std::max<int64_t>(options.long_figures ? context + 512 : context, stream_tokens);
  const int64_t f16_token_bytes = int64_t{2} * hparams->num_layers * hparams->kv_dim() * 2;
  engine_options.kv_cache_bytes = tokens * f16_token_bytes;
  file->reset();
  auto engine = Engine::Create(engine_options);
  if (!engine.ok()) return engine.status();
  auto runner = std::make_unique<EngineRunner>(options, *std::move(engine));
  if (absl::Status s = runner->Warmup(); !s.ok()) return s;
  return runner;
}

}  // namespace phi3::bench
