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
// the CPUs we target those three share the same execution pipes. F16
// weights are widened to f32: one FMA lane per multiply-add. BF16 weights
// run on vdpbf16ps where the CPU has AVX512_BF16 (two multiply-adds per
// 32-bit lane, engine/kernels/simd_bf16_ops.h), else on f32 FMAs as F16.
#ifndef PHI3_ENGINE_TOOLS_BENCH_COMPUTE_ROOFLINE_H_
#define PHI3_ENGINE_TOOLS_BENCH_COMPUTE_ROOFLINE_H_

#include <cstdint>
#include <string_view>

#include "engine/gguf/gguf_file.h"

namespace phi3::bench {

struct ComputeRoofline {
  bool measured = false;      // false: the CPU lacks AVX512-VNNI (no figure)
  double peak_macs = 0;       // int8 MAC/s, vpdpbusd only, all threads
  double per_block_macs = 0;  // int8 MAC/s with 1 mul + 1 fma per 8 vpdpbusd
  double fma_macs = 0;        // f32 FMA lanes/s (F16 weights' multiply-adds), all threads
  // vdpbf16ps MAC/s (2 per 32-bit lane), all threads; 0 when our BF16 kernels
  // do not run it (no AVX512_BF16, or a SIMD level below AVX-512 is forced).
  double bf16_macs = 0;
};

// The multiply-add rate that bounds batched figures of weights of `type`
// (a phi3-mkmodel type name: "q4_0", "f16", "bf16", ...), and its name:
// f32 FMAs for float weights, vdpbf16ps for BF16 where measured, else int8
// MACs with the per-block mul + fma. {0, ""} when r is not measured.
struct MacCeiling {
  double macs_per_second = 0;
  const char* kind = "";
};
inline MacCeiling MacCeilingFor(const ComputeRoofline& r, std::string_view type) {
  if (!r.measured) return {};
  if (type == "bf16" && r.bf16_macs > 0) return {r.bf16_macs, "vdpbf16ps"};
  if (type == "f32" || type == "f16" || type == "bf16") return {r.fma_macs, "f32 FMAs"};
  return {r.per_block_macs, "int8 MACs"};
}

// Runs `num_threads` threads of register-only loops for ~0.2 s each (best of
// `repetitions`). REQUIRES: num_threads >= 1.
ComputeRoofline MeasureComputeRoofline(int num_threads, int repetitions);

// Multiply-adds of one token through every 2-D weight except the token
// embedding (the matmuls of all layers and the output head).
int64_t DecodeMacsPerToken(const GgufFile& file);

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_COMPUTE_ROOFLINE_H_
