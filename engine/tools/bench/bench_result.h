// One measurement of one figure by one side (ours or llama.cpp).
#ifndef PHI3_ENGINE_TOOLS_BENCH_BENCH_RESULT_H_
#define PHI3_ENGINE_TOOLS_BENCH_BENCH_RESULT_H_

#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

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

// N of a "parallel:N" figure (N >= 1); 0 for any other figure or a malformed N.
inline int ParallelStreams(absl::string_view figure) {
  int n = 0;
  if (!absl::ConsumePrefix(&figure, "parallel:") || !absl::SimpleAtoi(figure, &n) || n < 1) {
    return 0;
  }
  return n;
}

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_BENCH_RESULT_H_
