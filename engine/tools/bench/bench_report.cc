#include "engine/tools/bench/bench_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/tools/bench/bench_stats.h"

namespace phi3::bench {
namespace {

std::string JsonArray(const std::vector<double>& v) {
  std::vector<std::string> parts;
  for (double x : v) parts.push_back(JsonNumber(x));
  return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
}

}  // namespace

std::string FigureUnit(const std::string& figure) {
  if (absl::StartsWith(figure, "mem:")) return "bytes";
  if (figure == "ttft") return "warm/cold";
  if (figure == kDecodeVsReadFigure) return "fraction";
  return "tok/s";
}

bool LowerIsBetter(const std::string& figure) {
  return absl::StartsWith(figure, "mem:") || figure == "ttft";
}

FigureResult RunFigure(const std::string& figure, int reps, const OursFn& ours,
                       const LlamaFn& llama, const std::string& log_prefix) {
  FigureResult r;
  r.figure = figure;
  auto log = [&](const std::string& m) {
    std::fprintf(stderr, "[%s] %s\n", log_prefix.c_str(), m.c_str());
  };
  for (int rep = 0; rep < reps; ++rep) {
    log(absl::StrCat(figure, " rep ", rep + 1, "/", reps));
    auto mine = ours(figure, &r.ours_runner);
    if (!mine.ok()) {
      r.error = absl::StrCat("ours: ", mine.status().ToString());
      log(r.error);
      break;
    }
    r.ours.push_back(mine->value);
    for (const auto& [k, v] : mine->extras) r.ours_extras[k].push_back(v);
    // Each sample is logged as it comes, so an interrupted run keeps it.
    log(absl::StrCat(figure, " rep ", rep + 1, " ours ", JsonNumber(mine->value)));
    if (llama) {
      auto theirs = llama(figure);
      if (!theirs.ok()) {
        r.error = absl::StrCat("llama.cpp: ", theirs.status().ToString());
        log(r.error);
        break;
      }
      r.llama.push_back(theirs->Number("value").value_or(NAN));
      log(absl::StrCat(figure, " rep ", rep + 1, " llama.cpp ", JsonNumber(r.llama.back())));
      for (const auto& [k, v] : theirs->numbers) {
        if (k != "value") r.llama_extras[k].push_back(v);
      }
    }
  }
  return r;
}

std::string FigureJson(const FigureResult& r, const std::string& model, int threads, int reps,
                       const std::map<std::string, std::string>& extra_fields) {
  const double o = Median(r.ours), l = Median(r.llama);
  std::string line = absl::StrCat(
      "{\"figure\":", JsonQuote(r.figure), ",\"ours\":", JsonNumber(o),
      ",\"llama_cpp\":", JsonNumber(l), ",\"ratio\":", JsonNumber(o / l),
      ",\"unit\":", JsonQuote(FigureUnit(r.figure)),
      ",\"better\":", LowerIsBetter(r.figure) ? "\"lower\"" : "\"higher\"",
      ",\"ours_runner\":", JsonQuote(r.ours_runner), ",\"threads\":", threads,
      ",\"reps\":", reps, ",\"model\":", JsonQuote(model));
  for (const auto& [k, v] : r.ours_extras) {
    absl::StrAppend(&line, ",\"ours_", k, "\":", JsonNumber(Median(v)));
  }
  for (const auto& [k, v] : r.llama_extras) {
    absl::StrAppend(&line, ",\"llama_cpp_", k, "\":", JsonNumber(Median(v)));
  }
  for (const auto& [k, v] : extra_fields) absl::StrAppend(&line, ",", JsonQuote(k), ":", v);
  absl::StrAppend(&line, ",\"ours_samples\":", JsonArray(r.ours),
                  ",\"llama_cpp_samples\":", JsonArray(r.llama));
  if (!r.error.empty()) absl::StrAppend(&line, ",\"error\":", JsonQuote(r.error));
  return line + "}";
}

std::string DecodeVsReadLine(const FigureResult& r, const std::string& read_pattern) {
  auto extra = [&](const char* key) {
    auto it = r.ours_extras.find(key);
    return it == r.ours_extras.end() ? NAN : Median(it->second);
  };
  if (!r.error.empty()) {
    return absl::StrCat(r.figure, ": ERROR ", r.error, "\n");
  }
  return absl::StrFormat(
      "%s (ours only; llama.cpp runs in another process): decode %.1f GB/s vs read %.1f GB/s "
      "(%s) of the same seconds -> %.2f per pair (medians, %.0f pairs x %d reps)\n",
      r.figure, extra("decode_bytes_s") / 1e9, extra("read_bytes_s") / 1e9, read_pattern,
      Median(r.ours), extra("pairs"), static_cast<int>(r.ours.size()));
}

std::string HumanValue(double v, const std::string& unit) {
  if (!std::isfinite(v)) return "-";
  if (unit == "bytes") return absl::StrFormat("%.1f MiB", v / (1 << 20));
  if (unit == "warm/cold") return absl::StrFormat("%.4f", v);
  return absl::StrFormat("%.2f", v);
}

std::string FigureTable(const std::vector<FigureResult>& results) {
  std::string out = absl::StrFormat("%-14s %14s %14s %8s  %-9s %s\n", "figure", "ours",
                                    "llama.cpp", "ratio", "unit", "notes");
  for (const auto& r : results) {
    const std::string unit = FigureUnit(r.figure);
    const double o = Median(r.ours), l = Median(r.llama);
    std::string notes = r.ours_runner.empty() ? "" : absl::StrCat("ours=", r.ours_runner);
    for (const char* k : {"itl_p50_ms", "itl_p99_ms", "cold_ms", "warm_ms"}) {
      auto a = r.ours_extras.find(k), b = r.llama_extras.find(k);
      if (a == r.ours_extras.end() && b == r.llama_extras.end()) continue;
      absl::StrAppend(&notes, " ", k, "=",
                      HumanValue(a == r.ours_extras.end() ? NAN : Median(a->second), ""), "/",
                      HumanValue(b == r.llama_extras.end() ? NAN : Median(b->second), ""));
    }
    if (!r.error.empty()) absl::StrAppend(&notes, " ERROR ", r.error);
    absl::StrAppendFormat(&out, "%-14s %14s %14s %8s  %-9s %s\n", r.figure, HumanValue(o, unit),
                          HumanValue(l, unit), HumanValue(o / l, "warm/cold"), unit, notes);
  }
  return out;
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

std::string CpuFlagsClass() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, "flags")) continue;
    const std::vector<std::string> flags = absl::StrSplit(line.substr(line.find(':') + 1), ' ',
                                                          absl::SkipEmpty());
    auto has = [&](std::string_view f) {
      return std::find(flags.begin(), flags.end(), f) != flags.end();
    };
    // The extensions that decide which kernels (ours and llama.cpp's) run.
    auto list = [&](const char* prefix, std::initializer_list<const char*> names) {
      std::vector<std::string> present;
      for (const char* n : names) {
        if (has(absl::StrCat(prefix, n))) present.push_back(n);
      }
      return absl::StrJoin(present, " ");
    };
    if (!has("avx512f")) return has("avx2") ? "AVX2 (no AVX-512)" : "no AVX2";
    std::string out = absl::StrCat("AVX-512 (", list("avx512_", {"vnni", "bf16", "fp16"}), ")");
    const std::string amx = list("amx_", {"int8", "bf16", "fp16"});
    absl::StrAppend(&out, amx.empty() ? ", no AMX" : absl::StrCat(" + AMX (", amx, ")"));
    return out;
  }
  return "unknown";
}

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  if (!(in >> a >> b >> c)) return "";
  return absl::StrCat(a, " ", b, " ", c);
}

}  // namespace phi3::bench
