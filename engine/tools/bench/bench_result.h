// One measurement of one figure by one side (ours or llama.cpp).
#ifndef PHI3_ENGINE_TOOLS_BENCH_BENCH_RESULT_H_
#define PHI3_ENGINE_TOOLS_BENCH_BENCH_RESULT_H_

#include <map>
#include <string>

namespace phi3::bench {

// Figure names (same as tests/oracle/bench.mjs):
//   tg128, pp512, tg128@2048  tokens/s
//   parallel:N                aggregate tokens/s of N streams; extras
//                             itl_p50_ms, itl_p99_ms
//   ttft                      warm/cold ratio; extras cold_ms, warm_ms
//   mem:f16, mem:q8_0         resident bytes of one 4096-token sequence
struct Measurement {
  double value = 0;
  std::map<std::string, double> extras;
};

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_BENCH_RESULT_H_
