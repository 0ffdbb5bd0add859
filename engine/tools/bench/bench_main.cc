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
#include "engine/tools/bench/bench_stats.h"
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
ABSL_FLAG(bool, roofline, true, "measure read bandwidth and report the decode roofline");
ABSL_FLAG(int, bandwidth_mib, 1024, "buffer size of the bandwidth test");

namespace phi3::bench {
namespace {

struct FigureResult {
  std::string figure;
  std::vector<double> ours, llama;
  std::map<std::string, std::vector<double>> ours_extras, llama_extras;
  std::string ours_runner;
  std::string error;
};

std::string Unit(const std::string& figure) {
  if (absl::StartsWith(figure, "mem:")) return "bytes";
  if (figure == "ttft") return "warm/cold";
  return "tok/s";
}
bool LowerIsBetter(const std::string& figure) {
  return absl::StartsWith(figure, "mem:") || figure == "ttft";
}

std::string CpuName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "model name")) {
      auto pos = line.find(':');
      if (pos != std::string::npos) return line.substr(pos + 2);
    }
  }
  return "unknown";
}

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string JsonArray(const std::vector<double>& v) {
  std::vector<std::string> parts;
  for (double x : v) parts.push_back(JsonNumber(x));
  return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
}

std::string Human(double v, const std::string& unit) {
  if (!std::isfinite(v)) return "-";
  if (unit == "bytes") return absl::StrFormat("%.1f MiB", v / (1 << 20));
  if (unit == "warm/cold") return absl::StrFormat("%.4f", v);
  return absl::StrFormat("%.2f", v);
}

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
      results.push_back(RunFigure(figure, ours));
      std::printf("%s\n", FigureJson(results.back(), model).c_str());
      std::fflush(stdout);
    }

    if (absl::GetFlag(FLAGS_roofline)) {
      // Release our model first so the bandwidth buffer does not compete.
      engine_.reset();
      model_.reset();
      const int64_t buffer = int64_t{absl::GetFlag(FLAGS_bandwidth_mib)} << 20;
      bw1_ = MeasureReadBandwidth(1, buffer, 5);
      bwn_ = MeasureReadBandwidth(threads_, buffer, 5);
    }
    Print(results, model);
    return 0;
  }

 private:
  FigureResult RunFigure(const std::string& figure, const std::string& ours) {
    FigureResult r;
    r.figure = figure;
    for (int rep = 0; rep < reps_; ++rep) {
      Log(absl::StrCat(figure, " rep ", rep + 1, "/", reps_));
      auto mine = RunOurs(figure, ours, &r.ours_runner);
      if (!mine.ok()) {
        r.error = absl::StrCat("ours: ", mine.status().ToString());
        Log(r.error);
        break;
      }
      r.ours.push_back(mine->value);
      for (const auto& [k, v] : mine->extras) r.ours_extras[k].push_back(v);
      if (llama_ != nullptr) {
        auto theirs = llama_->Run(figure);
        if (!theirs.ok()) {
          r.error = absl::StrCat("llama.cpp: ", theirs.status().ToString());
          Log(r.error);
          break;
        }
        r.llama.push_back(*theirs->Number("value"));
        for (const auto& [k, v] : theirs->numbers) {
          if (k != "value") r.llama_extras[k].push_back(v);
        }
      }
    }
    return r;
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

  // One JSON line: ours, llama_cpp and ratio are medians; samples follow.
  std::string FigureJson(const FigureResult& r, const std::string& model) const {
    const double o = Median(r.ours), l = Median(r.llama);
    std::string line = absl::StrCat(
        "{\"figure\":", JsonQuote(r.figure), ",\"ours\":", JsonNumber(o),
        ",\"llama_cpp\":", JsonNumber(l), ",\"ratio\":", JsonNumber(o / l),
        ",\"unit\":", JsonQuote(Unit(r.figure)),
        ",\"better\":", LowerIsBetter(r.figure) ? "\"lower\"" : "\"higher\"",
        ",\"ours_runner\":", JsonQuote(r.ours_runner), ",\"threads\":", threads_,
        ",\"reps\":", reps_, ",\"model\":", JsonQuote(model));
    for (const auto& [k, v] : r.ours_extras) {
      absl::StrAppend(&line, ",\"ours_", k, "\":", JsonNumber(Median(v)));
    }
    for (const auto& [k, v] : r.llama_extras) {
      absl::StrAppend(&line, ",\"llama_cpp_", k, "\":", JsonNumber(Median(v)));
    }
    absl::StrAppend(&line, ",\"ours_samples\":", JsonArray(r.ours),
                    ",\"llama_cpp_samples\":", JsonArray(r.llama));
    if (!r.error.empty()) absl::StrAppend(&line, ",\"error\":", JsonQuote(r.error));
    return line + "}";
  }

  void Print(const std::vector<FigureResult>& results, const std::string& model) {
    const double ours_tg = Median(Find(results, "tg128", true));
    const double llama_tg = Median(Find(results, "tg128", false));
    const double roofline = bwn_ / static_cast<double>(bytes_per_token_);

    std::printf("\nphi3-bench  %s  model=%s  threads=%d  reps=%d (median)\n", UtcNow().c_str(),
                model.c_str(), threads_, reps_);
    std::printf("CPU: %s   llama.cpp CPU variant: %s\n", CpuName().c_str(),
                llama_ ? llama_->info().String("cpu_variant").c_str() : "-");
    std::printf("%-14s %14s %14s %8s  %-9s %s\n", "figure", "ours", "llama.cpp", "ratio", "unit",
                "notes");
    for (const auto& r : results) {
      const std::string unit = Unit(r.figure);
      const double o = Median(r.ours), l = Median(r.llama);
      std::string notes = r.ours_runner.empty() ? "" : absl::StrCat("ours=", r.ours_runner);
      for (const char* k : {"itl_p50_ms", "itl_p99_ms", "cold_ms", "warm_ms"}) {
        auto a = r.ours_extras.find(k), b = r.llama_extras.find(k);
        if (a == r.ours_extras.end() && b == r.llama_extras.end()) continue;
        absl::StrAppend(&notes, " ", k, "=",
                        Human(a == r.ours_extras.end() ? NAN : Median(a->second), ""), "/",
                        Human(b == r.llama_extras.end() ? NAN : Median(b->second), ""));
      }
      if (!r.error.empty()) absl::StrAppend(&notes, " ERROR ", r.error);
      std::printf("%-14s %14s %14s %8s  %-9s %s\n", r.figure.c_str(), Human(o, unit).c_str(),
                  Human(l, unit).c_str(), Human(o / l, "warm/cold").c_str(), unit.c_str(),
                  notes.c_str());
    }
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
    std::printf("{\"figure\":\"system\",\"date\":%s,\"cpu\":%s,\"threads\":%d,"
                "\"llama_cpp_cpu_variant\":%s,\"llama_cpp_flash_attention\":%s,\"model\":%s}\n",
                JsonQuote(UtcNow()).c_str(), JsonQuote(CpuName()).c_str(), threads_,
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
