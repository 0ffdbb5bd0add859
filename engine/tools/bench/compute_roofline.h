// Measures the multiply-add ceilings of mac_ceiling.h on this CPU, at the
// SIMD level our kernels run (ActiveSimdLevel(): PHI3_KERNELS may force
// AVX2 on an AVX-512 machine), and counts a model's multiply-adds per token.
#ifndef PHI3_ENGINE_TOOLS_BENCH_COMPUTE_ROOFLINE_H_
#define PHI3_ENGINE_TOOLS_BENCH_COMPUTE_ROOFLINE_H_

#include <cstdint>
#include <map>
#include <string>

#include "engine/gguf/gguf_file.h"
#include "engine/tools/bench/mac_ceiling.h"

namespace phi3::bench {

// Runs `num_threads` threads of register-only loops for ~0.2 s each (best of
// `repetitions`) per type: the AVX-512 loops when the active level is
// AVX-512 (which implies VNNI), the AVX2 loops when it is AVX2, nothing
// (measured = false) at the scalar level. REQUIRES: num_threads >= 1.
ComputeRoofline MeasureComputeRoofline(int num_threads, int repetitions);

// Multiply-adds of one token through every 2-D weight except the token
// embedding (the matmuls of all layers and the output head).
int64_t DecodeMacsPerToken(const GgufFile& file);

// The same multiply-adds split by weight type (lower-case ggml name ->
// MACs); the values sum to DecodeMacsPerToken.
std::map<std::string, int64_t> DecodeMacsByType(const GgufFile& file);

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_COMPUTE_ROOFLINE_H_
