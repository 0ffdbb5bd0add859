#include "engine/tools/bench/sweep_table.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/tools/bench/bench_report.h"

namespace phi3::bench {
namespace {

std::string Percent(double value, double ceiling) {
  if (!(ceiling > 0) || !std::isfinite(value)) return "-";
  return absl::StrFormat("%.0f%%", 100 * value / ceiling);
}

std::string Ratio(double ours, double llama) {
  const double r = ours / llama;
  return std::isfinite(r) ? absl::StrFormat("%.2fx", r) : "-";
}

}  // namespace

std::string SweepTable(const SweepHost& host, const std::vector<SweepRow>& rows) {
  std::string out = absl::StrCat(
      "phi3-bench --types sweep, ", host.date, ", threads ", host.threads, ", reps ", host.reps,
      " (medians)\n", "- host CPU: ", host.cpu, " (", host.cpu_class, ")\n",
      "- our kernels: ", host.simd_level, "; llama.cpp CPU build: ", host.llama_variant, "\n",
      "- load average: ", host.load_average, "\n");
  if (host.read_bandwidth > 0) {
    absl::StrAppendFormat(&out, "- read bandwidth: %.2f GB/s (threads %d",
                          host.read_bandwidth / 1e9, host.threads);
    if (!host.read_pattern.empty()) absl::StrAppend(&out, ", ", host.read_pattern);
    absl::StrAppend(&out, ")\n");
  }
  if (host.int8_macs > 0) {
    absl::StrAppendFormat(&out,
                          "- multiply-adds (threads %d): int8 %.0f G/s with Q4_0's per-block "
                          "mul + fma, f32 FMA %.0f G/s",
                          host.threads, host.int8_macs / 1e9, host.fma_macs / 1e9);
    if (host.bf16_macs > 0) {
      absl::StrAppendFormat(&out, ", bf16 vdpbf16ps %.0f G/s", host.bf16_macs / 1e9);
    }
    absl::StrAppend(&out, "\n");
  }
  if (!host.type_macs.empty()) {
    absl::StrAppendFormat(&out, "- exact per-type ceilings (threads %d, %s loops), G MAC/s:",
                          host.threads, host.mac_level);
    for (const auto& [type, macs] : host.type_macs) {
      absl::StrAppendFormat(&out, " %s %.0f", type, macs / 1e9);
    }
    if (host.int8_peak_macs > 0) {
      absl::StrAppendFormat(&out, "; bare int8 peak %.0f", host.int8_peak_macs / 1e9);
    }
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out,
                  "\n| type | figure | ours tok/s | llama.cpp tok/s | ratio | ours % of roofline "
                  "| llama.cpp % | roofline |\n|---|---|---|---|---|---|---|---|\n");
  for (const SweepRow& r : rows) {
    const std::string ceiling =
        r.ceiling > 0 ? absl::StrFormat("%.2f tok/s (%s)", r.ceiling, r.ceiling_kind) : "-";
    absl::StrAppendFormat(&out, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.type, r.figure,
                          HumanValue(r.ours, "tok/s"), HumanValue(r.llama, "tok/s"),
                          Ratio(r.ours, r.llama), Percent(r.ours, r.ceiling),
                          Percent(r.llama, r.ceiling),
                          r.error.empty() ? ceiling : absl::StrCat(ceiling, " ERROR ", r.error));
  }
  absl::StrAppend(&out,
                  "\nroofline: decode = read bandwidth / weight bytes per token; prompt and "
                  "batched decode = the lower of multiply-add rate / multiply-adds per token "
                  "(attention not counted; each weight type at the rate of the exact instruction "
                  "mix its llama.cpp rounding needs, a model's types weighted by their "
                  "multiply-adds) and N x the decode roofline (N tokens per read of the weights: "
                  "parallel:N's N streams, pp512's 512 prompt tokens); the roofline column names "
                  "the binding one first.\n");
  return out;
}

}  // namespace phi3::bench
