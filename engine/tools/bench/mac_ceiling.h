// The multiply-add ceilings of batched decode and prefill: what the cores
// can issue per second for each weight type's exact arithmetic (measured by
// compute_roofline.h), the ceiling of a model that mixes types, and a
// batched figure's roofline: the lower of that and the decode bandwidth
// ceiling times the tokens per weight read.
//
// Why per type: one decode token is bound by memory bandwidth (roofline.h),
// but N tokens batched into one step read the weights once and cost N times
// the multiply-adds, so beyond a few streams a step is usually bound by the
// vector pipes (not always: BatchedRooflineOf). Bit-identity with llama.cpp
// fixes more than the MACs: each type's rounding needs its own float work
// per block (Q4_0 one convert + fma per 32 elements, Q8_0 eight), so each
// type has its own ceiling, measured with exactly that instruction mix (the
// loops in compute_roofline_*.cc say which instructions and why). Loads,
// broadcasts and unpacking are not counted: they are costs of an
// implementation, not of the numerics.
#ifndef PHI3_ENGINE_TOOLS_BENCH_MAC_CEILING_H_
#define PHI3_ENGINE_TOOLS_BENCH_MAC_CEILING_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace phi3::bench {

// One weight type's exact-arithmetic multiply-add rate at the active SIMD
// level, all threads.
struct TypeMacRate {
  std::string type;  // lower-case ggml name: "q4_0", "q4_k", "f16", ...
  double macs_per_second = 0;
  std::string instructions;  // the mix per block, e.g. "8 x (vpdpbusd+cvt+fma) + mul /32"
};

struct ComputeRoofline {
  bool measured = false;      // false: no loops for the active SIMD level (scalar)
  std::string level;          // the SIMD level measured ("avx512", "avx2")
  double peak_macs = 0;       // bare int8 MAC/s (vpdpbusd; AVX2: vpmaddubsw), all threads
  double per_block_macs = 0;  // int8 MAC/s of Q4_0's exact mix (the q4_0 entry)
  double fma_macs = 0;        // f32 FMA lanes/s (F16 weights' multiply-adds), all threads
  // vdpbf16ps MAC/s (2 per 32-bit lane), all threads; 0 when our BF16 kernels
  // do not run it (no AVX512_BF16, or a SIMD level below AVX-512 is forced).
  double bf16_macs = 0;
  std::vector<TypeMacRate> types;  // every weight type the active level runs
};

// The multiply-add rate that bounds batched figures of weights of `type`
// (a lower-case ggml type name: "q4_0", "f16", ...) and its name
// ("Q8_0 exact: 8 x (vpdpbusd+cvt+fma) + mul /32"). {0, ""} when r is not
// measured or has no rate for `type`.
struct MacCeiling {
  double macs_per_second = 0;
  std::string kind;
};
MacCeiling MacCeilingFor(const ComputeRoofline& r, std::string_view type);

// The ceiling of a model whose per-token multiply-adds are `macs_by_type`
// (type -> MACs, as DecodeMacsByType): time per token = sum over types of
// MACs / that type's rate; macs_per_second = total MACs / that time. Kind:
// the one type's MacCeilingFor kind, or for a mix "exact mix: q4_k 71%,
// q6_k 29%" (shares of the MACs). {0, ""} if any type has no rate.
MacCeiling ModelMacCeiling(const ComputeRoofline& r,
                           const std::map<std::string, int64_t>& macs_by_type);

// The roofline of a batched figure, whose steps run `tokens_per_pass` tokens
// (N) through every weight matrix per read of the weights: the lower of the
// compute ceiling (MAC rate / MACs per token, as above) and N x the decode
// ceiling (read bandwidth / weight bytes per token, roofline.h), since a
// step reads the weights once for its N tokens. kind names the binding
// ceiling and keeps the other's value:
//   compute binds:   "<compute kind>; bandwidth 16 x 5.17 = 82.72 tok/s"
//   bandwidth binds: "bandwidth: 16 x 5.17 tok/s; compute 110.42 tok/s, <compute kind>"
// A ceiling <= 0 is unknown: without bandwidth the roofline is the compute
// ceiling with its kind unchanged; without compute it is the bandwidth one
// ("...; compute not measured"); without both, tok_s = 0 and kind "".
// Ties go to compute.
struct BatchedRoofline {
  double tok_s = 0;  // the binding ceiling, tok/s (0: unknown)
  bool bandwidth_bound = false;
  std::string kind;
  double compute_tok_s = 0;    // as given (0: unknown)
  double bandwidth_tok_s = 0;  // N x decode_tok_s (0: unknown)
  // "bandwidth" or "compute" (also when neither is known).
  std::string_view bound() const { return bandwidth_bound ? "bandwidth" : "compute"; }
};
// REQUIRES: tokens_per_pass >= 1.
BatchedRoofline BatchedRooflineOf(double compute_tok_s, std::string_view compute_kind,
                                  double decode_tok_s, int tokens_per_pass);

// One line per type: "q8_0  123.4 G MAC/s  Q8_0 exact: ...".
std::string TypeCeilingLines(const ComputeRoofline& r);

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_MAC_CEILING_H_
