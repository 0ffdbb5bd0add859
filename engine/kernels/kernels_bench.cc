// Micro-benchmark of the kernels (a tool, not a test): memory read
// bandwidth (the decode roofline, read_bandwidth.h) and MatMul throughput
// per type, shape, thread count and batch size. Prints one line per case
// with the median of several repetitions: weight GB/s (decode: compare with
// the read bandwidth) and GFLOP/s (prefill).
//
// Usage: kernels_bench [--types=q4_K,q6_K,...] [--tokens=1,4,16,64,512]
//                      [--threads=1,2] [--shapes=3072x3072,...] [--reps=5]
//                      [--bandwidth=0 to skip the read-bandwidth test]
//                      [--packed=0,1: row-major and/or packed layout
//                       (Q4_0/Q4_1/Q8_0/Q4_K/Q5_K/Q6_K)]
//                      [--prompt=1: calls of several tokens are one llama.cpp prompt
//                       batch (its prompt roundings: tinyBLAS order for F16/BF16, Q4_K
//                       gemm), as the model runs a prompt; default 0: decode rounding]
//                      [--copies=N: N copies of each matrix, one call per copy in
//                       turn; default 1, which times one matrix again and again, so a
//                       shape smaller than the last-level cache is read from there,
//                       not from memory as a model's decode reads it. Pick N so that
//                       N x the matrix's bytes is several times the cache.]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "engine/kernels/cpu_features.h"
#include "engine/kernels/matmul.h"
#include "engine/kernels/packed_weights.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/read_bandwidth.h"
#include "engine/kernels/thread_pool.h"

namespace phi3 {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the whole process: with a loaded machine, cpu-ms / threads
// approaches the time the kernels would take on idle cores.
double CpuNow() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::optional<TensorType> ParseType(std::string_view name) {
  for (uint32_t id = 0; id < 64; ++id) {
    const auto traits = GetTensorTypeTraits(id);
    if (traits && traits->weight_type && traits->name == name) return static_cast<TensorType>(id);
  }
  return std::nullopt;
}

std::vector<std::string> ListFlag(int argc, char** argv, const char* name, const char* dflt) {
  const std::string prefix = std::string("--") + name + "=";
  std::string value = dflt;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) value = argv[i] + prefix.size();
  }
  return absl::StrSplit(value, ',', absl::SkipEmpty());
}

int Main(int argc, char** argv) {
  const auto types = ListFlag(argc, argv, "types", "q4_K,q6_K,q4_0,q8_0,f16");
  const auto tokens = ListFlag(argc, argv, "tokens", "1,4,16,64,512");
  const auto threads = ListFlag(argc, argv, "threads", "1,2");
  const auto shapes =
      ListFlag(argc, argv, "shapes", "3072x3072,9216x3072,16384x3072,3072x8192,32064x3072");
  const auto reps_flag = ListFlag(argc, argv, "reps", "5");
  int reps = 5;
  if (!absl::SimpleAtoi(reps_flag[0], &reps) || reps < 1) reps = 5;
  int copies = 1;
  if (!absl::SimpleAtoi(ListFlag(argc, argv, "copies", "1")[0], &copies) || copies < 1) {
    std::fprintf(stderr, "--copies takes a positive count\n");
    return 2;
  }

  std::printf("simd level: %s%s\n", std::string(SimdLevelName(ActiveSimdLevel())).c_str(),
              AmxTilesActive() ? " (+ AMX-INT8 tiles for Q4_0 / Q4_K)" : "");
  std::printf("copies of each matrix: %d%s\n", copies,
              copies == 1 ? " (shapes under the last-level cache are timed from there)" : "");
  const bool skip_bandwidth = ListFlag(argc, argv, "bandwidth", "1")[0] == "0";
  for (const std::string& th : threads) {
    int nth = 1;
    if (skip_bandwidth || !absl::SimpleAtoi(th, &nth)) continue;
    const ReadBandwidth bw = MeasureReadBandwidth(nth, kReadBandwidthBufferBytes, reps);
    std::printf("read bandwidth, %d thread(s): %.2f GB/s (best pass of %d per pattern: %s)\n",
                nth, bw.bytes_per_second / 1e9, reps, bw.pattern.c_str());
    ThreadPool pool(nth);
    // Dispatch cost: an empty job, back to back (decode makes ~250 per token).
    std::vector<double> us;
    for (int rep = 0; rep < 2000; ++rep) {
      const double t0 = Now();
      pool.ParallelFor(nth, [](int64_t, int64_t, int) {});
      us.push_back((Now() - t0) * 1e6);
    }
    std::sort(us.begin(), us.end());
    std::printf("ParallelFor dispatch, %d thread(s): median %.2f us, p10 %.2f us, min %.2f us\n",
                nth, us[us.size() / 2], us[us.size() / 10], us[0]);
  }
  const auto packed_modes = ListFlag(argc, argv, "packed", "0,1");
  const bool prompt = ListFlag(argc, argv, "prompt", "0")[0] == "1";
  std::printf("%-6s %-3s %-12s %3s %5s %10s %9s %9s %10s %10s\n", "type", "pk", "shape", "thr",
              "tok", "ms", "GB/s", "GFLOP/s", "cpu-ms", "min-ms");
  for (const std::string& tname : types) {
    const auto type = ParseType(tname);
    if (!type) {
      std::fprintf(stderr, "unknown type %s\n", tname.c_str());
      return 2;
    }
    for (const std::string& shape : shapes) {
      std::vector<std::string> dims = absl::StrSplit(shape, 'x');
      int64_t rows = 0, cols = 0;
      if (dims.size() != 2 || !absl::SimpleAtoi(dims[0], &rows) ||
          !absl::SimpleAtoi(dims[1], &cols)) {
        std::fprintf(stderr, "bad shape %s\n", shape.c_str());
        return 2;
      }
      // Weights: one random row quantized, replicated (content does not
      // change the cost), in `copies` separate buffers.
      const int64_t row_bytes = RowBytes(*type, cols);
      std::vector<float> row(cols);
      for (int64_t i = 0; i < cols; ++i)
        row[i] = static_cast<float>((i * 7919) % 2003) / 1000.0f - 1.0f;
      std::vector<uint8_t> first(row_bytes * rows);
      QuantizeRow(*type, row.data(), first.data(), cols);
      for (int64_t r = 1; r < rows; ++r) {
        std::memcpy(first.data() + r * row_bytes, first.data(), row_bytes);
      }
      std::vector<std::vector<uint8_t>> w(copies - 1, first);
      w.push_back(std::move(first));
      std::vector<WeightMatrix> row_major;
      for (const std::vector<uint8_t>& c : w) {
        row_major.push_back(WeightMatrix{*type, rows, cols, c.data()});
      }
      for (const std::string& th : threads) {
        int nth = 1;
        if (!absl::SimpleAtoi(th, &nth)) continue;
        ThreadPool pool(nth);
        for (const std::string& pk : packed_modes) {
          const bool packed = pk == "1";
          if (packed && !CanPackWeights(row_major[0])) continue;
          std::vector<PackedWeights> pw;
          std::vector<WeightMatrix> m = row_major;
          if (packed) {
            for (int c = 0; c < copies; ++c) {
              pw.push_back(PackWeights(row_major[c], pool));
              m[c] = pw.back().matrix();
              if (m[c].data == nullptr) {
                std::fprintf(stderr, "out of memory packing copy %d of %s\n", c, shape.c_str());
                return 2;
              }
            }
          }
          for (const std::string& tk : tokens) {
            int64_t nt = 1;
            if (!absl::SimpleAtoi(tk, &nt)) continue;
            std::vector<float> x(nt * cols);
            for (int64_t i = 0; i < nt * cols; ++i) x[i] = row[i % cols];
            std::vector<float> y(nt * rows);
            const MatMulRounding rounding =
                prompt && nt > 1
                    ? MatMulRounding{.batch_tokens = nt, .q4k_gemm_tokens = nt - nt % 4}
                    : MatMulRounding{};
            std::vector<double> times, cpu_times;
            for (int rep = 0; rep < reps + 1; ++rep) {
              const double t0 = Now(), c0 = CpuNow();
              MatMul(m[rep % copies], x.data(), nt, y.data(), rows, pool, rounding);
              const double dt = Now() - t0, dc = CpuNow() - c0;
              if (rep > 0) {
                times.push_back(dt);
                cpu_times.push_back(dc);
              }
            }
            const double t = Median(times);
            std::printf("%-6s %-3s %-12s %3d %5lld %10.3f %9.2f %9.1f %10.3f %10.3f\n",
                        tname.c_str(), packed ? "pk" : "rm", shape.c_str(), nth,
                        static_cast<long long>(nt), t * 1e3, row_bytes * rows / t / 1e9,
                        2.0 * rows * cols * nt / t / 1e9, Median(cpu_times) * 1e3,
                        *std::min_element(times.begin(), times.end()) * 1e3);
            std::fflush(stdout);
          }
        }
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace phi3

int main(int argc, char** argv) { return phi3::Main(argc, argv); }
