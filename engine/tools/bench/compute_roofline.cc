#include "engine/tools/bench/compute_roofline.h"

#include <atomic>
#include <cstdlib>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/read_bandwidth.h"

namespace phi3::bench {

// compute_roofline_avx512.cc
int64_t VnniPeakLoop(int64_t iterations);
int64_t VnniBlockLoop(int64_t iterations);
int64_t FmaPeakLoop(int64_t iterations);
// compute_roofline_avx512bf16.cc
int64_t Bf16DotPeakLoop(int64_t iterations);

namespace {

// MAC/s of `loop` run on num_threads threads at once, best of `repetitions`.
double ConcurrentMacRate(int64_t (*loop)(int64_t), int64_t iterations, double macs_per_iteration,
                         int num_threads, int repetitions) {
  std::atomic<int64_t> sink{0};
  const double seconds = BestConcurrentSeconds(
      num_threads, repetitions, [&](int) { sink.fetch_add(loop(iterations)); });
  if (sink.load() == 42) std::abort();  // keeps the loops' results observable
  return num_threads * macs_per_iteration * static_cast<double>(iterations) / seconds;
}

}  // namespace

ComputeRoofline MeasureComputeRoofline(int num_threads, int repetitions) {
  ComputeRoofline r;
  if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512bw")) return r;
  r.measured = true;
  // ~0.2 s per thread at ~200 G MAC/s.
  r.peak_macs = ConcurrentMacRate(&VnniPeakLoop, int64_t{50} << 20, 12 * 64, num_threads,
                                  repetitions);
  r.per_block_macs = ConcurrentMacRate(&VnniBlockLoop, int64_t{40} << 20, 2 * 8 * 64,
                                       num_threads, repetitions);
  r.fma_macs = ConcurrentMacRate(&FmaPeakLoop, int64_t{40} << 20, 12 * 16, num_threads,
                                 repetitions);
  if (CpuHasAvx512Bf16() && ActiveSimdLevel() == SimdLevel::kAvx512) {
    r.bf16_macs = ConcurrentMacRate(&Bf16DotPeakLoop, int64_t{40} << 20, 12 * 32, num_threads,
                                    repetitions);
  }
  return r;
}

int64_t DecodeMacsPerToken(const GgufFile& file) {
  int64_t total = 0;
  for (const GgufTensor& t : file.tensors()) {
    if (t.dims.size() < 2 || t.name == "token_embd.weight") continue;
    total += t.num_elements;
  }
  return total;
}

}  // namespace phi3::bench
