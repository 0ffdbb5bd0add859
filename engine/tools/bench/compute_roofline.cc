#include "engine/tools/bench/compute_roofline.h"

#include <atomic>
#include <cstdlib>
#include <iterator>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "engine/common/tensor_type.h"
#include "engine/kernels/cpu_features.h"
#include "engine/kernels/packed_internal.h"
#include "engine/kernels/read_bandwidth.h"

namespace phi3::bench {

// compute_roofline_avx512.cc
int64_t VnniPeakLoop(int64_t iterations);
int64_t VnniBlockLoop(int64_t iterations);
int64_t Q8_0LaneLoop(int64_t iterations);
int64_t Q4_1LaneLoop(int64_t iterations);
int64_t Q4KBlockLoop(int64_t iterations);
int64_t Q5KBlockLoop(int64_t iterations);
int64_t Q6KBlockLoop(int64_t iterations);
int64_t FmaPeakLoop(int64_t iterations);
// compute_roofline_avx512bf16.cc
int64_t Bf16DotPeakLoop(int64_t iterations);
// compute_roofline_avx2.cc
int64_t Avx2MaddubsPeakLoop(int64_t iterations);
int64_t Avx2FmaPeakLoop(int64_t iterations);
int64_t Avx2Q4_0Loop(int64_t iterations);
int64_t Avx2Q8_0Loop(int64_t iterations);
int64_t Avx2Q4_1Loop(int64_t iterations);
int64_t Avx2Q4KLoop(int64_t iterations);
int64_t Avx2Q5KLoop(int64_t iterations);
int64_t Avx2Q6KLoop(int64_t iterations);

namespace {

// The AMX kernels in L1 (packed_internal.h): one call = 65536 MACs.
int64_t AmxQ4_0Loop(int64_t iterations) {
  return internal::AmxKernelInL1(TensorType::kQ4_0, iterations);
}
int64_t AmxQ4KLoop(int64_t iterations) {
  return internal::AmxKernelInL1(TensorType::kQ4_K, iterations);
}

// One loop: what it computes and its MACs per iteration.
struct Loop {
  const char* type;  // "" for the bare peaks
  int64_t (*fn)(int64_t);
  double macs_per_iteration;
  const char* instructions;  // per 16 rows x token x block
};

// ~0.1-0.2 s per thread: iterations x MACs per iteration ~ 2^35.
constexpr double kMacsPerRun = 3.4e10;

// MAC/s of `loop` run on num_threads threads at once, best of `repetitions`.
double ConcurrentMacRate(const Loop& loop, int num_threads, int repetitions) {
  const auto iterations = static_cast<int64_t>(kMacsPerRun / loop.macs_per_iteration);
  std::atomic<int64_t> sink{0};
  const double seconds = BestConcurrentSeconds(
      num_threads, repetitions, [&](int) { sink.fetch_add(loop.fn(iterations)); });
  if (sink.load() == 42) std::abort();  // keeps the loops' results observable
  return num_threads * loop.macs_per_iteration * static_cast<double>(iterations) / seconds;
}

// MACs of one iteration that covers `tokens` tokens x `rows` rows x a block
// of `elements`.
constexpr double Macs(int tokens, int rows, int elements) {
  return static_cast<double>(tokens) * rows * elements;
}

const Loop kAvx512Loops[] = {
    {"q4_0", &VnniBlockLoop, Macs(2, 16, 32), "8 vpdpbusd + add + cvt + mul + fma /32"},
    {"q4_1", &Q4_1LaneLoop, Macs(2, 16, 32), "8 x (vpdpbusd+cvt+fma) + 2 mul + add /32"},
    {"q8_0", &Q8_0LaneLoop, Macs(2, 16, 32), "8 x (vpdpbusd+cvt+fma) + mul /32"},
    {"q4_k", &Q4KBlockLoop, Macs(1, 16, 256),
     "64 vpdpbusd + 8 vpmulld + 4 vpmaddwd + 10 add + 2 x (cvt+mul+fma) /256"},
    {"q5_k", &Q5KBlockLoop, Macs(1, 16, 256),
     "64 x (vpmaddubsw+vpdpwssd) + 8 x (cvt+fma) + mul; mins 4 vpmaddwd + 3 add + cvt + mul + "
     "fma /256"},
    {"q6_k", &Q6KBlockLoop, Macs(1, 16, 256),
     "64 x (vpmaddubsw+vpdpwssd) + 8 x (vpmaddwd+shift+sub+cvt+fma) + mul /256"},
};

// Per 8-row half; the instruction counts are given per 16 rows (x2).
const Loop kAvx2Loops[] = {
    {"q4_0", &Avx2Q4_0Loop, Macs(2, 8, 32),
     "16 vpmaddubsw + 14 vpaddw + 2 vpmaddwd + 2 x (add+cvt+mul+fma) /32"},
    {"q4_1", &Avx2Q4_1Loop, Macs(1, 8, 32),
     "16 x (vpmaddubsw+vpmaddwd+cvt+fma) + 4 mul + 2 add /32"},
    {"q8_0", &Avx2Q8_0Loop, Macs(1, 8, 32),
     "16 x (vpsignb+vpmaddubsw+vpmaddwd+cvt+fma) + 2 mul /32"},
    {"q4_k", &Avx2Q4KLoop, Macs(1, 8, 256),
     "128 vpmaddubsw + 112 vpaddw + 24 vpmaddwd + 20 add + 4 x (cvt+mul+fma) /256"},
    {"q5_k", &Avx2Q5KLoop, Macs(1, 8, 256),
     "128 x (vpmaddubsw+vpmaddwd) + 112 add + 16 x (cvt+fma) + 2 mul; mins 8 vpmaddwd + 6 add "
     "+ 2 x (cvt+mul+fma) /256"},
    {"q6_k", &Avx2Q6KLoop, Macs(1, 8, 256),
     "128 x (vpmaddubsw+vpmaddwd) + 112 add + 16 x (vpmaddwd+shift+sub+cvt+fma) + 2 mul /256"},
};

}  // namespace

ComputeRoofline MeasureComputeRoofline(int num_threads, int repetitions) {
  ComputeRoofline r;
  const SimdLevel level = ActiveSimdLevel();
  const Loop* loops = nullptr;
  int num_loops = 0;
  Loop peak{}, fma{};
  if (level == SimdLevel::kAvx512) {
    loops = kAvx512Loops;
    num_loops = static_cast<int>(std::size(kAvx512Loops));
    peak = {"", &VnniPeakLoop, Macs(12, 16, 4), ""};
    fma = {"", &FmaPeakLoop, 12 * 16, "1 fma lane per MAC (vcvtph2ps widening not counted)"};
  } else if (level == SimdLevel::kAvx2) {
    loops = kAvx2Loops;
    num_loops = static_cast<int>(std::size(kAvx2Loops));
    peak = {"", &Avx2MaddubsPeakLoop, 8 * 32, ""};
    fma = {"", &Avx2FmaPeakLoop, 12 * 8, "1 fma lane per MAC (widening to f32 not counted)"};
  } else {
    return r;
  }
  r.measured = true;
  r.level = std::string(SimdLevelName(level));
  r.peak_macs = ConcurrentMacRate(peak, num_threads, repetitions);
  for (int i = 0; i < num_loops; ++i) {
    r.types.push_back({loops[i].type, ConcurrentMacRate(loops[i], num_threads, repetitions),
                       loops[i].instructions});
  }
  if (AmxTilesActive()) {
    // Q4_0 and Q4_K run on AMX tiles: their ceiling is the AMX kernels'
    // (the AVX-512 mix's rate stays in the description).
    for (TypeMacRate& t : r.types) {
      const bool q4_0 = t.type == "q4_0";
      if (!q4_0 && t.type != "q4_k") continue;
      const Loop amx{"", q4_0 ? &AmxQ4_0Loop : &AmxQ4KLoop, Macs(16, 16, 256), ""};
      const double avx512 = t.macs_per_second;
      t.macs_per_second = ConcurrentMacRate(amx, num_threads, repetitions);
      t.instructions = absl::StrFormat(
          "AMX tiles: per %s x 16 rows x 16 tokens, tilezero + tileloadd x 2 + tdpbssd + "
          "tilestored, then the AVX-512 epilogue, all in L1 (AVX-512 mix: %.1f G MAC/s, %s)",
          q4_0 ? "32-element block" : "32-element sub-block", avx512 / 1e9, t.instructions);
    }
  }
  r.per_block_macs = MacCeilingFor(r, "q4_0").macs_per_second;
  r.fma_macs = ConcurrentMacRate(fma, num_threads, repetitions);
  r.types.push_back({"f16", r.fma_macs, fma.instructions});
  r.types.push_back({"f32", r.fma_macs, "1 fma lane per MAC"});
  if (level == SimdLevel::kAvx512 && CpuHasAvx512Bf16()) {
    r.bf16_macs = ConcurrentMacRate({"", &Bf16DotPeakLoop, 12 * 32, ""}, num_threads, repetitions);
    r.types.push_back({"bf16", r.bf16_macs, "vdpbf16ps, 2 MACs per f32 lane"});
  } else {
    r.types.push_back({"bf16", r.fma_macs, "1 fma lane per MAC (bf16 widened to f32)"});
  }
  return r;
}

int64_t DecodeMacsPerToken(const GgufFile& file) {
  int64_t total = 0;
  for (const auto& [type, macs] : DecodeMacsByType(file)) total += macs;
  return total;
}

std::map<std::string, int64_t> DecodeMacsByType(const GgufFile& file) {
  std::map<std::string, int64_t> macs;
  for (const GgufTensor& t : file.tensors()) {
    if (t.dims.size() < 2 || t.name == "token_embd.weight") continue;
    macs[absl::AsciiStrToLower(TensorTypeName(t.type))] += t.num_elements;
  }
  return macs;
}

}  // namespace phi3::bench
