// phi3-bench: our engine vs llama.cpp (node-llama-cpp, tests/oracle/bench.mjs)
// on the same GGUF file with the same threads in the same run, alternating
// the two, median of --reps repetitions. Prints a table, then one JSON line
// per figure: {"figure":..., "ours":..., "llama_cpp":..., "ratio":..., ...}.
// See tests/bench/README.md.
#include <malloc.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tools/bench/bench_report.h"
#include "engine/tools/bench/bench_stats.h"
#include "engine/tools/bench/compute_roofline.h"
#include "engine/tools/bench/flat_json.h"
#include "engine/tools/bench/llama_client.h"
#include "engine/tools/bench/ours_runner.h"
#include "engine/tools/bench/roofline.h"

ABSL_FLAG(std::string, model, "", "GGUF file to benchmark (required)");
ABSL_FLAG(int, threads, 2, "compute threads, the same for both sides");
ABSL_FLAG(int, reps, 5, "repetitions per figure and side; the median is reported");
ABSL_FLAG(std::string, figures,
          "tg128,pp512,tg128@2048,parallel:1,parallel:4,parallel:16,parallel:64,ttft,mem:f16,"
          "mem:q8_0",
          "comma-separated figures: tg128, pp512, tg128@2048, parallel:N, ttft, mem:f16, mem:q8_0");
ABSL_FLAG(int, parallel_tokens, 64, "tokens generated per stream in parallel:N");
ABSL_FLAG(std::string, ours, "auto",
          "our side: engine (phi3::Engine), model (Phi3Model::Forward directly) or auto "
          "(engine where it can measure the figure, else model)");
ABSL_FLAG(bool, llama, true, "also run llama.cpp (node tests/oracle/bench.mjs --serve)");
ABSL_FLAG(std::string, node, "node", "node executable for the llama.cpp side");
ABSL_FLAG(std::string, oracle_script, PHI3_BENCH_DEFAULT_SCRIPT, "path of bench.mjs");
ABSL_FLAG(bool, roofline, true,
          "measure read bandwidth and int8 MAC throughput and report the decode rooflines");
ABSL_FLAG(int, bandwidth_mib, 1024, "buffer size of the bandwidth test");

namespace phi3::bench {
namespace {

class Bench {
 public:
  int Main() {
    const std::string model = absl::GetFlag(FLAGS_model);
    if (model.empty()) return Usage("--model FILE is required");
    threads_ = absl::GetFlag(FLAGS_threads);
    reps_ = absl::GetFlag(FLAGS_reps);
    const std::string ours = absl::GetFlag(FLAGS_ours);
    if (threads_ < 1) return Usage("--threads must be >= 1");
    if (reps_ < 1) return Usage("--reps must be >= 1");
    if (ours != "auto" && ours != "engine" && ours != "model") {
      return Usage(absl::StrCat("--ours must be auto, engine or model, got ", ours));
    }
    std::vector<std::string> figures =
        absl::StrSplit(absl::GetFlag(FLAGS_figures), ',', absl::SkipEmpty());
    options_.model_path = model;
    options_.num_threads = threads_;
    options_.parallel_tokens = absl::GetFlag(FLAGS_parallel_tokens);
    options_.max_streams = 1;
    options_.long_figures = false;
    for (const auto& f : figures) {
      if (absl::StartsWith(f, "parallel:")) {
        options_.max_streams = std::max(options_.max_streams, std::atoi(f.c_str() + 9));
      }
      if (f == "tg128@2048" || f == "ttft") options_.long_figures = true;
    }

    auto file = GgufFile::Open(model);
    if (!file.ok()) return Fail(file.status());
    bytes_per_token_ = DecodeBytesPerToken(**file);
    macs_per_token_ = DecodeMacsPerToken(**file);
    file->reset();

    if (absl::GetFlag(FLAGS_llama)) {
      Log("starting llama.cpp (node-llama-cpp) ...");
      LlamaClientOptions lo;
      lo.node = absl::GetFlag(FLAGS_node);
      lo.script = absl::GetFlag(FLAGS_oracle_script);
      lo.model_path = model;
      lo.num_threads = threads_;
      lo.parallel_tokens = options_.parallel_tokens;
      auto client = LlamaClient::Start(lo);
      if (!client.ok()) return Fail(client.status());
      llama_ = *std::move(client);
      Log(absl::StrCat("llama.cpp CPU variant: ", llama_->info().String("cpu_variant")));
    }
    if (ours == "engine" || ours == "auto") {
      Log("loading our engine ...");
      auto engine = NewEngineRunner(options_);
      if (engine.ok()) {
        engine_ = *std::move(engine);
      } else if (ours == "engine" || !absl::IsUnimplemented(engine.status())) {
        return Fail(engine.status());
      } else {
        Log(absl::StrCat("no Engine: ", engine.status().message()));
      }
    }

    std::vector<FigureResult> results;
    // Each figure's JSON line is printed as soon as it is measured, so a long
    // run that is interrupted still leaves its results; the table comes last.
    for (const std::string& figure : figures) {
      results.push_back(RunOneFigure(figure, ours));
      std::printf("%s\n", FigureJson(results.back(), model, threads_, reps_).c_str());
      std::fflush(stdout);
    }

    if (absl::GetFlag(FLAGS_roofline)) {
      // Release our model first so the bandwidth buffer does not compete.
      engine_.reset();
      model_.reset();
      const int64_t buffer = int64_t{absl::GetFlag(FLAGS_bandwidth_mib)} << 20;
      bw1_ = MeasureReadBandwidth(1, buffer, 5);
      bwn_ = MeasureReadBandwidth(threads_, buffer, 5);
      compute_ = MeasureComputeRoofline(threads_, 3);
    }
    Print(results, model);
    return 0;
  }

 private:
  FigureResult RunOneFigure(const std::string& figure, const std::string& ours) {
    LlamaFn llama;
    if (llama_ != nullptr) llama = [this](const std::string& f) { return llama_->Run(f); };
    return RunFigure(
        figure, reps_,
        [&](const std::string& f, std::string* runner) { return RunOurs(f, ours, runner); },
        llama, "phi3-bench");
  }

  absl::StatusOr<Measurement> RunOurs(const std::string& figure, const std::string& ours,
                                      std::string* runner_name) {
    if (engine_ != nullptr) {
      auto m = engine_->Run(figure);
      if (m.ok() || !absl::IsUnimplemented(m.status()) || ours == "engine") {
        *runner_name = engine_->name();
        return m;
      }
    }
    if (model_ == nullptr) {
      Log("loading our model (direct Forward) ...");
      auto model = NewModelRunner(options_);
      if (!model.ok()) return model.status();
      model_ = *std::move(model);
    }
    *runner_name = model_->name();
    return model_->Run(figure);
  }

  void Print(const std::vector<FigureResult>& results, const std::string& model) {
    const double ours_tg = Median(Find(results, "tg128", true));
    const double llama_tg = Median(Find(results, "tg128", false));
    const double roofline = bwn_ / static_cast<double>(bytes_per_token_);

    std::printf("\nphi3-bench  %s  model=%s  threads=%d  reps=%d (median)\n", UtcNow().c_str(),
                model.c_str(), threads_, reps_);
    std::printf("CPU: %s   llama.cpp CPU variant: %s\n", CpuName().c_str(),
                llama_ ? llama_->info().String("cpu_variant").c_str() : "-");
    std::printf("load average: %s\n%s", LoadAverage().c_str(), FigureTable(results).c_str());
    if (bwn_ > 0) {
      std::printf(
          "roofline: read bandwidth %.2f GB/s (1 thread), %.2f GB/s (%d threads); %.1f MiB "
          "weights per decode step -> %.2f tok/s; tg128 = %.0f%% (ours), %.0f%% (llama.cpp)\n",
          bw1_ / 1e9, bwn_ / 1e9, threads_, bytes_per_token_ / 1048576.0, roofline,
          100 * ours_tg / roofline, 100 * llama_tg / roofline);
    }
    if (bwn_ > 0) {
      std::printf(
          "{\"figure\":\"roofline\",\"ours\":%s,\"llama_cpp\":%s,\"ratio\":%s,\"unit\":"
          "\"fraction of bandwidth/bytes_per_token\",\"read_bandwidth_1t_bytes_s\":%s,"
          "\"read_bandwidth_bytes_s\":%s,\"threads\":%d,\"bytes_per_token\":%lld,"
          "\"roofline_tok_s\":%s,\"model\":%s}\n",
          JsonNumber(ours_tg / roofline).c_str(), JsonNumber(llama_tg / roofline).c_str(),
          JsonNumber(ours_tg / llama_tg).c_str(), JsonNumber(bw1_).c_str(),
          JsonNumber(bwn_).c_str(), threads_, static_cast<long long>(bytes_per_token_),
          JsonNumber(roofline).c_str(), JsonQuote(model).c_str());
    }
    if (compute_.measured && macs_per_token_ > 0) {
      // Batched decode: a step of N tokens costs N x the MACs (weights read
      // once), so its ceiling is the MAC rate / MACs per token.
      const double peak_tok_s = compute_.peak_macs / static_cast<double>(macs_per_token_);
      const double block_tok_s = compute_.per_block_macs / static_cast<double>(macs_per_token_);
      std::string vs;
      for (const char* figure : {"parallel:16", "parallel:64"}) {
        const double ours = Median(Find(results, figure, true));
        if (ours > 0) {
          absl::StrAppend(&vs, "; ", figure, " = ",
                          absl::StrFormat("%.0f%%", 100 * ours / block_tok_s));
        }
      }
      std::printf(
          "compute roofline (batched decode): int8 MAC peak %.0f G/s (vpdpbusd, %d threads), "
          "%.0f G/s with llama.cpp's per-block mul + fma (Q4_0 x Q8_0); %.2f G MACs per "
          "token -> at most %.1f tok/s (%.1f at the bare peak)%s\n",
          compute_.peak_macs / 1e9, threads_, compute_.per_block_macs / 1e9,
          macs_per_token_ / 1e9, block_tok_s, peak_tok_s, vs.c_str());
      std::printf(
          "{\"figure\":\"compute_roofline\",\"int8_mac_peak_s\":%s,"
          "\"int8_mac_per_block_s\":%s,\"macs_per_token\":%lld,\"ceiling_tok_s\":%s,"
          "\"peak_tok_s\":%s,\"threads\":%d,\"model\":%s}\n",
          JsonNumber(compute_.peak_macs).c_str(), JsonNumber(compute_.per_block_macs).c_str(),
          static_cast<long long>(macs_per_token_), JsonNumber(block_tok_s).c_str(),
          JsonNumber(peak_tok_s).c_str(), threads_, JsonQuote(model).c_str());
    }
    std::printf("{\"figure\":\"system\",\"date\":%s,\"cpu\":%s,\"threads\":%d,"
                "\"load_average\":%s,\"llama_cpp_cpu_variant\":%s,\"llama_cpp_flash_attention\":%s,"
                "\"model\":%s}\n",
                JsonQuote(UtcNow()).c_str(), JsonQuote(CpuName()).c_str(), threads_,
                JsonQuote(LoadAverage()).c_str(),
                JsonQuote(llama_ ? llama_->info().String("cpu_variant") : "").c_str(),
                JsonQuote(llama_ ? llama_->info().String("flash_attention") : "").c_str(),
                JsonQuote(model).c_str());
    std::fflush(stdout);
  }

  static std::vector<double> Find(const std::vector<FigureResult>& results,
                                  const std::string& figure, bool ours) {
    for (const auto& r : results) {
      if (r.figure == figure) return ours ? r.ours : r.llama;
    }
    return {};
  }

  static void Log(const std::string& message) {
    std::fprintf(stderr, "[phi3-bench] %s\n", message.c_str());
  }
  static int Usage(const std::string& message) {
    std::fprintf(stderr, "phi3-bench: %s\n", message.c_str());
    return 2;
  }
  static int Fail(const absl::Status& status) {
    std::fprintf(stderr, "phi3-bench: %s\n", status.ToString().c_str());
    return 1;
  }

  OursOptions options_;
  int threads_ = 2;
  int reps_ = 5;
  int64_t bytes_per_token_ = 0;
  int64_t macs_per_token_ = 0;
  ComputeRoofline compute_;
  double bw1_ = 0, bwn_ = 0;
  std::unique_ptr<LlamaClient> llama_;
  std::unique_ptr<OursRunner> engine_, model_;
};

}  // namespace
}  // namespace phi3::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "phi3-bench --model FILE [--threads N] [--reps R] [--figures LIST] [--ours auto|engine|model] "
      "[--nollama]\nOur engine vs llama.cpp on the same GGUF file; see tests/bench/README.md.");
  absl::ParseCommandLine(argc, argv);
  // A fixed threshold (glibc otherwise raises it after big frees) makes every
  // buffer of 1 MiB or more its own mapping, returned to the OS when freed,
  // so the resident-memory figures see each KV pool being allocated.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  phi3::bench::Bench bench;
  return bench.Main();
}
