// The figure loop and the output of phi3-bench and phi3-serve-bench (tests/bench):
// ours and llama.cpp alternated per repetition, medians, one JSON line per figure,
// then a table. Shared so both tools print the same schema (tests/bench/README.md).
#ifndef PHI3_ENGINE_TOOLS_BENCH_BENCH_REPORT_H_
#define PHI3_ENGINE_TOOLS_BENCH_BENCH_REPORT_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tools/bench/bench_result.h"
#include "engine/tools/bench/flat_json.h"

namespace phi3::bench {

struct FigureResult {
  std::string figure;
  std::vector<double> ours, llama;  // one sample per repetition
  std::map<std::string, std::vector<double>> ours_extras, llama_extras;
  std::string ours_runner;          // "engine", "model", "grpc", ...
  std::string error;                // first failure; the loop stops there
};

// The figure that sets decode against read passes of the same seconds (ours
// only: llama.cpp runs in another process, whose steps cannot be interleaved
// with our passes). See tests/bench/README.md.
inline constexpr char kDecodeVsReadFigure[] = "tg128_vs_read";

// "tok/s", "warm/cold" (ttft), "bytes" (mem:*) or "fraction" (tg128_vs_read).
std::string FigureUnit(const std::string& figure);
bool LowerIsBetter(const std::string& figure);

using OursFn = std::function<absl::StatusOr<Measurement>(const std::string& figure,
                                                         std::string* runner_name)>;
using LlamaFn = std::function<absl::StatusOr<FlatJson>(const std::string& figure)>;

// `reps` repetitions of ours then llama.cpp (skipped when `llama` is empty),
// logging progress to stderr with `log_prefix`. Stops at the first error
// (recorded in the result).
FigureResult RunFigure(const std::string& figure, int reps, const OursFn& ours,
                       const LlamaFn& llama, const std::string& log_prefix);

// {"figure":..., "ours":median, "llama_cpp":median, "ratio":..., "unit":...,
//  "better":..., "ours_runner":..., "threads":..., "reps":..., "model":...,
//  "ours_<extra>":median..., "llama_cpp_<extra>":median..., samples, error}
// plus `extra_fields` (already JSON-encoded values) before the samples.
std::string FigureJson(const FigureResult& r, const std::string& model, int threads, int reps,
                       const std::map<std::string, std::string>& extra_fields = {});

// tg128_vs_read's human line (one line, newline-terminated) from its result
// (extras decode_bytes_s, read_bytes_s, pairs) and the read pattern of its
// passes.
std::string DecodeVsReadLine(const FigureResult& r, const std::string& read_pattern);

// The table rows (header line included), one per figure, with the ITL / TTFT
// extras as ours/llama.cpp pairs in the notes column.
std::string FigureTable(const std::vector<FigureResult>& results);

std::string CpuName();  // /proc/cpuinfo "model name"
// The CPU's vector class from /proc/cpuinfo's flags, e.g. "AVX-512 (vnni
// bf16), no AMX", "AVX-512 (vnni bf16 fp16) + AMX (int8 bf16)", "AVX2 (no
// AVX-512)"; "unknown" without a flags line.
std::string CpuFlagsClass();
std::string UtcNow();   // 2026-11-25T16:00:00Z
// System load averages (1/5/15 min) from /proc/loadavg; empty on failure.
std::string LoadAverage();

// Formats a value of `unit` for the table ("-" when not finite).
std::string HumanValue(double v, const std::string& unit);

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_BENCH_REPORT_H_
