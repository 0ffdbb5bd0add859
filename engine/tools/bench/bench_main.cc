// phi3-bench: our engine vs llama.cpp (node-llama-cpp, tests/oracle/bench.mjs)
// on the same GGUF file with the same threads in the same run, alternating
// the two, median of --reps repetitions. Prints a table, then one JSON line
// per figure: {"figure":..., "ours":..., "llama_cpp":..., "ratio":..., ...}.
// With --types, one run per weight type (models generated when missing) and
// one markdown table of them all (sweep_table.h). See tests/bench/README.md.
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "cli/flags.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/cpu_features.h"
#include "engine/kernels/read_bandwidth.h"
#include "engine/tools/bench/bench_report.h"
#include "engine/tools/bench/bench_result.h"
#include "engine/tools/bench/bench_stats.h"
#include "engine/tools/bench/compute_roofline.h"
#include "engine/tools/bench/flat_json.h"
#include "engine/tools/bench/llama_client.h"
#include "engine/tools/bench/ours_runner.h"
#include "engine/tools/bench/roofline.h"
#include "engine/tools/bench/sweep_table.h"
#include "engine/tools/mkmodel/phi3_model_writer.h"

ABSL_FLAG(std::string, model, "", "GGUF file to benchmark (this or --types)");
ABSL_FLAG(std::string, types, "",
          "sweep instead of --model: comma-separated phi3-mkmodel types (f16,bf16,q8_0,q4_0,"
          "q4_1,q4_k,q5_k,q6_k,q4_k_m); each runs on MODEL_DIR/PRESET[-L<layers>]-TYPE.gguf, "
          "generated (seed 1) when missing; ends with one table of all");
ABSL_FLAG(std::string, model_dir, "", "--types: directory of the models (required with --types)");
ABSL_FLAG(std::string, preset, "phi3-mini", "--types: phi3-mkmodel --preset of generated models");
ABSL_FLAG(int, layers, 0, "--types: n_layer of generated models (0: the preset's)");
ABSL_FLAG(int, threads, 2, "compute threads, the same for both sides");
ABSL_FLAG(int, reps, 5, "repetitions per figure and side; the median is reported");
ABSL_FLAG(std::string, figures, "",
          "comma-separated figures: tg128, pp512, tg128@2048, parallel:N, ttft, mem:f16, mem:q8_0, "
          "tg128_vs_read (ours only: decode steps alternating with read passes, the share of the "
          "same seconds' bandwidth) (default: all of them with --model; "
          "tg128,pp512,parallel:16 with --types)");
ABSL_FLAG(int, parallel_tokens, 64, "tokens generated per stream in parallel:N");
ABSL_FLAG(int, read_pairs, 32,
          "tg128_vs_read: decode steps (each between two read passes) per repetition");
ABSL_FLAG(std::string, ours, "auto",
          "our side: engine (phi3::Engine), model (Phi3Model::Forward directly) or auto "
          "(engine where it can measure the figure, else model)");
ABSL_FLAG(bool, llama, true, "also run llama.cpp (node tests/oracle/bench.mjs --serve)");
ABSL_FLAG(std::string, node, "node", "node executable for the llama.cpp side");
ABSL_FLAG(std::string, oracle_script, PHI3_BENCH_DEFAULT_SCRIPT, "path of bench.mjs");
ABSL_FLAG(bool, roofline, true,
          "measure read bandwidth and multiply-add throughput and report the rooflines");
ABSL_FLAG(bool, ceilings_only, false,
          "only measure and print each weight type's exact multiply-add ceiling at the active "
          "SIMD level (PHI3_KERNELS picks it), then exit; no model needed");
ABSL_FLAG(int, bandwidth_mib, static_cast<int>(phi3::kReadBandwidthBufferBytes >> 20),
          "buffer size of the bandwidth test");

namespace phi3::bench {
namespace {

constexpr char kAllFigures[] =
    "tg128,pp512,tg128@2048,parallel:1,parallel:4,parallel:16,parallel:64,ttft,mem:f16,mem:q8_0,"
    "tg128_vs_read";
constexpr char kSweepFigures[] = "tg128,pp512,parallel:16";

// The tokens a batched figure runs through every weight matrix per read of
// the weights (N of BatchedRooflineOf); 0 for the other figures. parallel:N:
// both runners decode the N streams in one step (one Forward over N
// single-token slices; the Engine's scheduler batches every running
// stream). pp512: the whole prompt in one pass, not micro-batches: the
// model runner prefills in 512-token Forward calls and the Engine in chunks
// of max_batched_tokens (512 by default, not changed here), and each
// Forward runs all its tokens through every weight MatMul together.
int TokensPerWeightPass(const std::string& figure) {
  return figure == "pp512" ? 512 : ParallelStreams(figure);
}

// One model's run: its figures and what its rooflines need.
struct ModelRun {
  std::string model;
  std::string type;  // --types entry ("" with --model)
  std::vector<FigureResult> results;
  int64_t bytes_per_token = 0;
  int64_t macs_per_token = 0;
  std::map<std::string, int64_t> macs_by_type;  // DecodeMacsByType
  std::string llama_variant, llama_flash_attention;
};

class Bench {
 public:
  int Main() {
    if (absl::GetFlag(FLAGS_ceilings_only)) return CeilingsOnly();
    const std::string model = absl::GetFlag(FLAGS_model);
    const std::vector<std::string> types =
        absl::StrSplit(absl::GetFlag(FLAGS_types), ',', absl::SkipEmpty());
    if (model.empty() == types.empty()) return Usage("give exactly one of --model FILE, --types LIST");
    if (!types.empty() && absl::GetFlag(FLAGS_model_dir).empty()) {
      return Usage("--types needs --model_dir DIR");
    }
    threads_ = absl::GetFlag(FLAGS_threads);
    reps_ = absl::GetFlag(FLAGS_reps);
    ours_ = absl::GetFlag(FLAGS_ours);
    if (threads_ < 1) return Usage("--threads must be >= 1");
    if (reps_ < 1) return Usage("--reps must be >= 1");
    if (ours_ != "auto" && ours_ != "engine" && ours_ != "model") {
      return Usage(absl::StrCat("--ours must be auto, engine or model, got ", ours_));
    }
    std::string figures = absl::GetFlag(FLAGS_figures);
    if (figures.empty()) figures = types.empty() ? kAllFigures : kSweepFigures;
    figures_ = absl::StrSplit(figures, ',', absl::SkipEmpty());
    options_.num_threads = threads_;
    options_.parallel_tokens = absl::GetFlag(FLAGS_parallel_tokens);
    options_.max_streams = 1;
    options_.long_figures = false;
    options_.read_pairs = absl::GetFlag(FLAGS_read_pairs);
    if (options_.read_pairs < 1) return Usage("--read_pairs must be >= 1");
    for (const auto& f : figures_) {
      options_.max_streams = std::max(options_.max_streams, ParallelStreams(f));
      if (f == "tg128@2048" || f == "ttft") options_.long_figures = true;
    }

    std::vector<ModelRun> runs(types.empty() ? 1 : types.size());
    if (types.empty()) runs[0].model = model;
    for (size_t i = 0; i < types.size(); ++i) {
      auto path = SweepModel(types[i]);
      if (!path.ok()) return Fail(path.status());
      runs[i].model = *path;
      runs[i].type = types[i];
    }
    // tg128_vs_read's passes use the pattern the roofline's bandwidth test
    // finds best, so that test runs first then (before any model is loaded,
    // as it otherwise runs after them all); without the roofline, the same
    // selection over the passes' own buffer.
    const bool vs_read =
        std::find(figures_.begin(), figures_.end(), kDecodeVsReadFigure) != figures_.end();
    const bool roofline = absl::GetFlag(FLAGS_roofline);
    if (vs_read) {
      if (roofline) MeasureBandwidth();
      options_.read_pattern =
          roofline ? bwn_pattern_ : ReadPassBuffer(threads_, kReadPassBytes).Fastest(5).pattern;
    }
    for (ModelRun& run : runs) {
      if (int rc = RunModel(run); rc != 0) return rc;
    }

    if (roofline) {
      if (!vs_read) MeasureBandwidth();
      compute_ = MeasureComputeRoofline(threads_, 3);
    }
    for (const ModelRun& run : runs) Print(run);
    if (!types.empty()) std::printf("\n%s", SweepTable(Host(runs), SweepRows(runs)).c_str());
    std::fflush(stdout);
    return 0;
  }

 private:
  // The roofline's read bandwidth on 1 and threads_ threads.
  void MeasureBandwidth() {
    const int64_t buffer = int64_t{absl::GetFlag(FLAGS_bandwidth_mib)} << 20;
    const ReadBandwidth bw1 = MeasureReadBandwidth(1, buffer, 5);
    const ReadBandwidth bwn = MeasureReadBandwidth(threads_, buffer, 5);
    bw1_ = bw1.bytes_per_second;
    bwn_ = bwn.bytes_per_second;
    bwn_pattern_ = bwn.pattern;
  }

  // MODEL_DIR/PRESET[-L<layers>]-TYPE.gguf, written (seed 1, as phi3-mkmodel
  // and run_all.sh do) when missing.
  absl::StatusOr<std::string> SweepModel(const std::string& type) {
    auto format = ParseWeightFormat(type);
    if (!format.ok()) return format.status();
    const std::string preset = absl::GetFlag(FLAGS_preset);
    auto dims = Phi3PresetDims(preset);
    if (!dims.ok()) return dims.status();
    const int layers = absl::GetFlag(FLAGS_layers);
    const std::string path =
        absl::StrCat(absl::GetFlag(FLAGS_model_dir), "/", preset,
                     layers > 0 ? absl::StrCat("-L", layers) : "", "-", type, ".gguf");
    if (std::filesystem::exists(path)) return path;
    Phi3ModelOptions o;
    o.dims = *dims;
    if (layers > 0) o.dims.n_layer = layers;
    o.format = *format;
    o.seed = 1;
    o.num_threads = threads_;
    o.name = absl::StrCat("Phi-3-mini-4k-instruct (phi3serve random weights, ", preset, ")");
    Log(absl::StrCat("generating ", path, " ..."));
    std::error_code ec;
    std::filesystem::create_directories(absl::GetFlag(FLAGS_model_dir), ec);
    const std::string tmp = path + ".tmp";
    if (absl::Status s = WritePhi3Model(o, tmp); !s.ok()) return s;
    std::filesystem::rename(tmp, path, ec);
    if (ec) return absl::InternalError(absl::StrCat("rename ", tmp, ": ", ec.message()));
    return path;
  }

  // Runs every figure on run->model (ours and llama.cpp), printing each
  // figure's JSON line as soon as it is measured, so a long run that is
  // interrupted still leaves its results; the tables come last. Releases
  // both sides' models before returning.
  int RunModel(ModelRun& run) {
    auto file = GgufFile::Open(run.model);
    if (!file.ok()) return Fail(file.status());
    run.bytes_per_token = DecodeBytesPerToken(**file);
    run.macs_per_token = DecodeMacsPerToken(**file);
    run.macs_by_type = DecodeMacsByType(**file);
    file->reset();
    options_.model_path = run.model;

    if (absl::GetFlag(FLAGS_llama)) {
      Log("starting llama.cpp (node-llama-cpp) ...");
      LlamaClientOptions lo;
      lo.node = absl::GetFlag(FLAGS_node);
      lo.script = absl::GetFlag(FLAGS_oracle_script);
      lo.model_path = run.model;
      lo.num_threads = threads_;
      lo.parallel_tokens = options_.parallel_tokens;
      auto client = LlamaClient::Start(lo);
      if (!client.ok()) return Fail(client.status());
      llama_ = *std::move(client);
      run.llama_variant = llama_->info().String("cpu_variant");
      run.llama_flash_attention = llama_->info().String("flash_attention");
      Log(absl::StrCat("llama.cpp CPU variant: ", run.llama_variant));
    }
    if (ours_ == "engine" || ours_ == "auto") {
      Log("loading our engine ...");
      auto engine = NewEngineRunner(options_);
      if (engine.ok()) {
        engine_ = *std::move(engine);
      } else if (ours_ == "engine" || !absl::IsUnimplemented(engine.status())) {
        return Fail(engine.status());
      } else {
        Log(absl::StrCat("no Engine: ", engine.status().message()));
      }
    }
    for (const std::string& figure : figures_) {
      run.results.push_back(RunOneFigure(figure));
      std::map<std::string, std::string> fields;
      if (figure == kDecodeVsReadFigure) fields["read_pattern"] = JsonQuote(options_.read_pattern);
      std::printf("%s\n",
                  FigureJson(run.results.back(), run.model, threads_, reps_, fields).c_str());
      std::fflush(stdout);
    }
    // Nothing of this model may compete with the next one or the roofline
    // tests' buffers.
    llama_.reset();
    engine_.reset();
    model_.reset();
    return 0;
  }

  FigureResult RunOneFigure(const std::string& figure) {
    LlamaFn llama;
    if (llama_ != nullptr && figure != kDecodeVsReadFigure) {
      llama = [this](const std::string& f) { return llama_->Run(f); };
    }
    return RunFigure(
        figure, reps_,
        [&](const std::string& f, std::string* runner) { return RunOurs(f, runner); }, llama,
        "phi3-bench");
  }

  absl::StatusOr<Measurement> RunOurs(const std::string& figure, std::string* runner_name) {
    if (engine_ != nullptr) {
      auto m = engine_->Run(figure);
      if (m.ok() || !absl::IsUnimplemented(m.status()) || ours_ == "engine") {
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

  SweepHost Host(const std::vector<ModelRun>& runs) const {
    SweepHost h;
    h.date = UtcNow();
    h.cpu = CpuName();
    h.cpu_class = CpuFlagsClass();
    h.simd_level = std::string(SimdLevelName(ActiveSimdLevel()));
    if (AmxTilesActive()) h.simd_level += " + AMX-INT8 tiles (Q4_0, Q4_K)";
    std::vector<std::string> variants;
    for (const ModelRun& r : runs) {
      const std::string v = r.llama_variant.empty() ? "-" : r.llama_variant;
      if (std::find(variants.begin(), variants.end(), v) == variants.end()) variants.push_back(v);
    }
    h.llama_variant = absl::StrJoin(variants, ", ");
    h.load_average = LoadAverage();
    h.threads = threads_;
    h.reps = reps_;
    h.read_bandwidth = bwn_;
    h.read_pattern = bwn_pattern_;
    if (compute_.measured) {
      h.int8_macs = compute_.per_block_macs;
      h.fma_macs = compute_.fma_macs;
      h.bf16_macs = compute_.bf16_macs;
      h.int8_peak_macs = compute_.peak_macs;
      h.mac_level = compute_.level;
      for (const TypeMacRate& t : compute_.types) {
        h.type_macs.emplace_back(t.type, t.macs_per_second);
      }
    }
    return h;
  }

  std::vector<SweepRow> SweepRows(const std::vector<ModelRun>& runs) const {
    std::vector<SweepRow> rows;
    for (const ModelRun& run : runs) {
      for (const FigureResult& r : run.results) {
        SweepRow row;
        row.type = run.type;
        row.figure = r.figure;
        row.ours = Median(r.ours);
        row.llama = Median(r.llama);
        row.error = r.error;
        if (r.figure == "tg128" || r.figure == "tg128@2048") {
          row.ceiling = DecodeRoofline(run);
          if (row.ceiling > 0) row.ceiling_kind = "bandwidth";
        } else if (const int n = TokensPerWeightPass(r.figure); n > 0) {
          const BatchedRoofline roofline =
              BatchedRooflineFor(run, ModelMacCeiling(compute_, run.macs_by_type), n);
          row.ceiling = roofline.tok_s;
          row.ceiling_kind = roofline.kind;
        }
        rows.push_back(row);
      }
    }
    return rows;
  }

  // tg128's roofline: read bandwidth / weight bytes per token (0: bandwidth
  // not measured).
  double DecodeRoofline(const ModelRun& run) const {
    return bwn_ > 0 && run.bytes_per_token > 0 ? bwn_ / static_cast<double>(run.bytes_per_token)
                                               : 0;
  }

  // A batched figure's roofline: the lower of the model's MAC ceiling
  // (`macs`, ModelMacCeiling) / MACs per token and tokens_per_pass x
  // DecodeRoofline.
  BatchedRoofline BatchedRooflineFor(const ModelRun& run, const MacCeiling& macs,
                                     int tokens_per_pass) const {
    const double compute_tok_s =
        run.macs_per_token > 0 ? macs.macs_per_second / static_cast<double>(run.macs_per_token) : 0;
    return BatchedRooflineOf(compute_tok_s, macs.kind, DecodeRoofline(run), tokens_per_pass);
  }

  void Print(const ModelRun& run) {
    const std::vector<FigureResult>& results = run.results;
    const std::string& model = run.model;
    const double ours_tg = Median(Find(results, "tg128", true));
    const double llama_tg = Median(Find(results, "tg128", false));
    const double roofline = DecodeRoofline(run);

    std::printf("\nphi3-bench  %s  model=%s  threads=%d  reps=%d (median)\n", UtcNow().c_str(),
                model.c_str(), threads_, reps_);
    std::printf("CPU: %s   llama.cpp CPU variant: %s\n", CpuName().c_str(),
                run.llama_variant.empty() ? "-" : run.llama_variant.c_str());
    std::printf("load average: %s\n%s", LoadAverage().c_str(), FigureTable(results).c_str());
    if (bwn_ > 0) {
      std::printf(
          "roofline: read bandwidth %.2f GB/s (1 thread), %.2f GB/s (%d threads, %s); %.1f "
          "MiB weights per decode step -> %.2f tok/s; tg128 = %.0f%% (ours), %.0f%% "
          "(llama.cpp)\n",
          bw1_ / 1e9, bwn_ / 1e9, threads_, bwn_pattern_.c_str(),
          run.bytes_per_token / 1048576.0, roofline, 100 * ours_tg / roofline,
          100 * llama_tg / roofline);
      std::printf(
          "{\"figure\":\"roofline\",\"ours\":%s,\"llama_cpp\":%s,\"ratio\":%s,\"unit\":"
          "\"fraction of bandwidth/bytes_per_token\",\"read_bandwidth_1t_bytes_s\":%s,"
          "\"read_bandwidth_bytes_s\":%s,\"read_bandwidth_pattern\":%s,\"threads\":%d,"
          "\"bytes_per_token\":%lld,\"roofline_tok_s\":%s,\"model\":%s}\n",
          JsonNumber(ours_tg / roofline).c_str(), JsonNumber(llama_tg / roofline).c_str(),
          JsonNumber(ours_tg / llama_tg).c_str(), JsonNumber(bw1_).c_str(),
          JsonNumber(bwn_).c_str(), JsonQuote(bwn_pattern_).c_str(), threads_,
          static_cast<long long>(run.bytes_per_token),
          JsonNumber(roofline).c_str(), JsonQuote(model).c_str());
    }
    for (const FigureResult& r : results) {
      if (r.figure == kDecodeVsReadFigure) {
        std::printf("%s", DecodeVsReadLine(r, options_.read_pattern).c_str());
      }
    }
    if (compute_.measured && run.macs_per_token > 0) PrintComputeRoofline(run);
    std::printf("{\"figure\":\"system\",\"date\":%s,\"cpu\":%s,\"cpu_class\":%s,"
                "\"simd_level\":%s,\"amx_tiles\":%s,\"threads\":%d,\"load_average\":%s,"
                "\"llama_cpp_cpu_variant\":%s,\"llama_cpp_flash_attention\":%s,\"model\":%s}\n",
                JsonQuote(UtcNow()).c_str(), JsonQuote(CpuName()).c_str(),
                JsonQuote(CpuFlagsClass()).c_str(),
                JsonQuote(std::string(SimdLevelName(ActiveSimdLevel()))).c_str(),
                AmxTilesActive() ? "true" : "false", threads_, JsonQuote(LoadAverage()).c_str(),
                JsonQuote(run.llama_variant).c_str(),
                JsonQuote(run.llama_flash_attention).c_str(), JsonQuote(model).c_str());
    std::fflush(stdout);
  }

  // Batched decode and prompts: a step of N tokens costs N x the MACs
  // (weights read once), so their compute ceiling is the model's MAC rate
  // (its types' exact mixes, weighted by their MACs) / MACs per token, and
  // their roofline the lower of that and N x the decode roofline. The line
  // and the JSON keep each figure's share of the compute ceiling
  // (<figure>_share) and add the roofline's (<figure>_roofline_*).
  void PrintComputeRoofline(const ModelRun& run) {
    const double macs_per_token = static_cast<double>(run.macs_per_token);
    const double peak_tok_s = compute_.peak_macs / macs_per_token;
    const MacCeiling model = ModelMacCeiling(compute_, run.macs_by_type);
    const double ceiling_tok_s = model.macs_per_second / macs_per_token;
    std::string vs, shares_json, types_json, roofline_lines;
    for (const FigureResult& r : run.results) {
      const int n = TokensPerWeightPass(r.figure);
      if (n == 0) continue;
      const std::string key = absl::StrReplaceAll(r.figure, {{":", "_"}});
      const double ours = Median(r.ours);
      const bool measured = ours > 0;
      if (measured && ceiling_tok_s > 0) {
        absl::StrAppendFormat(&vs, "; %s = %.0f%%", r.figure, 100 * ours / ceiling_tok_s);
        absl::StrAppend(&shares_json, ",\"", key, "_share\":", JsonNumber(ours / ceiling_tok_s));
      }
      const BatchedRoofline roofline = BatchedRooflineFor(run, model, n);
      if (!(roofline.tok_s > 0)) continue;
      absl::StrAppendFormat(&roofline_lines,
                            "batched roofline %s (%d tokens per weight read): %.2f tok/s, %s "
                            "binds (%s)",
                            r.figure, n, roofline.tok_s, roofline.bound(), roofline.kind);
      if (measured) {
        absl::StrAppendFormat(&roofline_lines, "; ours %.2f tok/s = %.0f%%", ours,
                              100 * ours / roofline.tok_s);
      }
      absl::StrAppend(&roofline_lines, "\n");
      absl::StrAppend(&shares_json, ",\"", key, "_tokens_per_pass\":", n, ",\"", key,
                      "_bandwidth_tok_s\":",
                      JsonNumber(roofline.bandwidth_tok_s > 0 ? roofline.bandwidth_tok_s : NAN),
                      ",\"", key, "_roofline_tok_s\":", JsonNumber(roofline.tok_s), ",\"", key,
                      "_bound\":", JsonQuote(roofline.bound()));
      if (measured) {
        absl::StrAppend(&shares_json, ",\"", key,
                        "_roofline_share\":", JsonNumber(ours / roofline.tok_s));
      }
    }
    for (const TypeMacRate& t : compute_.types) {
      absl::StrAppend(&types_json, ",\"", t.type,
                      "_exact_mac_s\":", JsonNumber(t.macs_per_second));
    }
    for (const auto& [type, macs] : run.macs_by_type) {
      absl::StrAppend(&types_json, ",\"", type, "_macs_per_token\":", macs);
    }
    const std::string bf16 =
        compute_.bf16_macs > 0
            ? absl::StrFormat(", vdpbf16ps %.0f G MAC/s", compute_.bf16_macs / 1e9)
            : "";
    std::printf(
        "compute roofline (batched decode and prompts, %s loops, %d threads): bare int8 MAC "
        "peak %.0f G/s, Q4_0 exact %.0f G/s, f32 FMA lanes %.0f G/s%s; this model: %s, %.0f G "
        "MAC/s; %.2f G MACs per token -> at most %.1f tok/s (%.1f at the bare peak)%s\n",
        compute_.level.c_str(), threads_, compute_.peak_macs / 1e9,
        compute_.per_block_macs / 1e9, compute_.fma_macs / 1e9, bf16.c_str(),
        model.kind.empty() ? "no ceiling for its types" : model.kind.c_str(),
        model.macs_per_second / 1e9, macs_per_token / 1e9, ceiling_tok_s, peak_tok_s, vs.c_str());
    std::printf("%s", roofline_lines.c_str());
    std::printf(
        "{\"figure\":\"compute_roofline\",\"int8_mac_peak_s\":%s,"
        "\"int8_mac_per_block_s\":%s,\"f32_fma_s\":%s,\"bf16_dot_mac_s\":%s,"
        "\"macs_per_token\":%lld,\"ceiling_tok_s\":%s,\"peak_tok_s\":%s,\"threads\":%d,"
        "\"model\":%s,\"simd_level\":%s,\"ceiling_kind\":%s,\"ceiling_mac_s\":%s%s%s}\n",
        JsonNumber(compute_.peak_macs).c_str(), JsonNumber(compute_.per_block_macs).c_str(),
        JsonNumber(compute_.fma_macs).c_str(), JsonNumber(compute_.bf16_macs).c_str(),
        static_cast<long long>(run.macs_per_token), JsonNumber(ceiling_tok_s).c_str(),
        JsonNumber(peak_tok_s).c_str(), threads_, JsonQuote(run.model).c_str(),
        JsonQuote(compute_.level).c_str(), JsonQuote(model.kind).c_str(),
        JsonNumber(model.macs_per_second).c_str(), shares_json.c_str(), types_json.c_str());
  }

  // --ceilings_only: every type's exact ceiling at the active level, a table
  // and one JSON line.
  int CeilingsOnly() {
    threads_ = absl::GetFlag(FLAGS_threads);
    if (threads_ < 1) return Usage("--threads must be >= 1");
    compute_ = MeasureComputeRoofline(threads_, 3);
    const std::string level(SimdLevelName(ActiveSimdLevel()));
    if (!compute_.measured) {
      std::printf("no multiply-add loops for SIMD level %s\n", level.c_str());
      return 0;
    }
    std::printf("exact multiply-add ceilings, %s loops, %d threads, CPU: %s (%s), %s\n%s"
                "  bare int8 peak %.1f G MAC/s\n",
                compute_.level.c_str(), threads_, CpuName().c_str(), CpuFlagsClass().c_str(),
                UtcNow().c_str(), TypeCeilingLines(compute_).c_str(), compute_.peak_macs / 1e9);
    std::string json = absl::StrCat(
        "{\"figure\":\"mac_ceilings\",\"simd_level\":", JsonQuote(compute_.level),
        ",\"threads\":", threads_, ",\"cpu\":", JsonQuote(CpuName()),
        ",\"int8_mac_peak_s\":", JsonNumber(compute_.peak_macs));
    for (const TypeMacRate& t : compute_.types) {
      absl::StrAppend(&json, ",\"", t.type, "_exact_mac_s\":", JsonNumber(t.macs_per_second));
    }
    std::printf("%s}\n", json.c_str());
    std::fflush(stdout);
    return 0;
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
  std::vector<std::string> figures_;
  std::string ours_;
  int threads_ = 2;
  int reps_ = 5;
  ComputeRoofline compute_;
  double bw1_ = 0, bwn_ = 0;  // bytes/s on 1 and threads_ threads
  std::string bwn_pattern_;   // the access pattern that reached bwn_
  std::unique_ptr<LlamaClient> llama_;
  std::unique_ptr<OursRunner> engine_, model_;
};

}  // namespace
}  // namespace phi3::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "phi3-bench --model FILE [--threads N] [--reps R] [--figures LIST] [--ours auto|engine|model] "
      "[--nollama]\n       phi3-bench --types q8_0,q4_0,... --model_dir DIR [--preset P] "
      "[--layers N] [...]\n       phi3-bench --ceilings_only [--threads N]\nOur engine vs llama.cpp on the same GGUF file(s); see "
      "tests/bench/README.md.");
  phi3::cli::ExitIfVersionRequested(argc, argv, "phi3-bench");
  absl::ParseCommandLine(argc, argv);
  // A fixed threshold (glibc otherwise raises it after big frees) makes every
  // buffer of 1 MiB or more its own mapping, returned to the OS when freed,
  // so the resident-memory figures see each KV pool being allocated.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  phi3::bench::Bench bench;
  return bench.Main();
}
