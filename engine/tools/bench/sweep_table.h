// The one table of a phi3-bench --types sweep: every weight type x figure,
// ours vs llama.cpp, and each side's share of the figure's roofline, under a
// header naming the host (CPU, flags class, our SIMD level, llama.cpp's CPU
// build). Markdown, so it pastes into notes and the README as it is.
#ifndef PHI3_ENGINE_TOOLS_BENCH_SWEEP_TABLE_H_
#define PHI3_ENGINE_TOOLS_BENCH_SWEEP_TABLE_H_

#include <string>
#include <utility>
#include <vector>

namespace phi3::bench {

struct SweepHost {
  std::string date;           // UtcNow()
  std::string cpu;            // CpuName()
  std::string cpu_class;      // CpuFlagsClass()
  std::string simd_level;     // our kernels' level ("avx512", ...)
  std::string llama_variant;  // llama.cpp's loaded CPU build ("zen4", ...; "-" if none)
  std::string load_average;
  int threads = 0;
  int reps = 0;
  double read_bandwidth = 0;  // bytes/s on `threads` threads (0: not measured)
  std::string read_pattern;   // the access pattern that reached it (ReadBandwidth::pattern)
  double int8_macs = 0;       // ComputeRoofline::per_block_macs (0: not measured)
  double fma_macs = 0;        // ComputeRoofline::fma_macs
  double bf16_macs = 0;       // ComputeRoofline::bf16_macs (0: BF16 runs on f32 FMAs)
  double int8_peak_macs = 0;  // ComputeRoofline::peak_macs (0: not printed)
  std::string mac_level;      // ComputeRoofline::level
  // Every type's exact-arithmetic MAC/s (ComputeRoofline::types), in order.
  std::vector<std::pair<std::string, double>> type_macs;
};

struct SweepRow {
  std::string type;    // "q8_0", "q4_k_m", ...
  std::string figure;  // "tg128", "pp512", "parallel:16", ...
  double ours = 0;     // tok/s medians (NaN: not measured)
  double llama = 0;
  // The figure's roofline in tok/s (<= 0: unknown) and what bounds it.
  double ceiling = 0;
  // Decode: "bandwidth". Batched figures: BatchedRoofline::kind, the binding
  // ceiling's name with the other's value ("Q8_0 exact: ...; bandwidth 16 x
  // 9.70 = 155.20 tok/s", "bandwidth: 16 x 5.17 tok/s; compute 110.42
  // tok/s, BF16 exact: ...").
  std::string ceiling_kind;
  std::string error;         // the figure's first failure, if any
};

// "| type | figure | ours tok/s | llama.cpp tok/s | ratio | ours % of
// roofline | llama.cpp % | roofline |" rows under a header of `host` lines,
// then a line saying how the rooflines are computed.
std::string SweepTable(const SweepHost& host, const std::vector<SweepRow>& rows);

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_SWEEP_TABLE_H_
