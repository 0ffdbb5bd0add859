// The compute roofline of batched decode on this CPU: how many int8
// multiply-adds per second the cores can issue, with and without the float
// work llama.cpp's quantized dot products add per 32-element block.
//
// Why a separate ceiling: one decode token is bound by memory bandwidth
// (roofline.h), but N tokens batched into one step read the weights once and
// cost N times the multiply-adds, so beyond a few streams a step is bound by
// int8 MAC throughput. For Q4_0 x Q8_0 blocks, bit-identical to llama.cpp,
// each block of 32 elements per (row, token) needs 8 vpdpbusd lanes' worth of
// MACs plus one fp32 mul (d_w * d_a) and one fma into the accumulator, and on
// the CPUs we target those three share the same execution pipes. Float
// weights (F16, BF16) are widened to f32: one FMA lane per multiply-add.
#ifndef PHI3_ENGINE_TOOLS_BENCH_COMPUTE_ROOFLINE_H_
#define PHI3_ENGINE_TOOLS_BENCH_COMPUTE_ROOFLINE_H_

#include <cstdint>

#include "engine/gguf/gguf_file.h"

namespace phi3::bench {

struct ComputeRoofline {
  bool measured = false;      // false: the CPU lacks AVX512-VNNI (no figure)
  double peak_macs = 0;       // int8 MAC/s, vpdpbusd only, all threads
  double per_block_macs = 0;  // int8 MAC/s with 1 mul + 1 fma per 8 vpdpbusd
  double fma_macs = 0;        // f32 FMA lanes/s (float weights' multiply-adds), all threads
};

// Runs `num_threads` threads of register-only loops for ~0.2 s each (best of
// `repetitions`). REQUIRES: num_threads >= 1.
ComputeRoofline MeasureComputeRoofline(int num_threads, int repetitions);

// Multiply-adds of one token through every 2-D weight except the token
// embedding (the matmuls of all layers and the output head).
int64_t DecodeMacsPerToken(const GgufFile& file);

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_COMPUTE_ROOFLINE_H_
