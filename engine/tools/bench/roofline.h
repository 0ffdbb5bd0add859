// The memory-bandwidth roofline of decode: a STREAM-like read test and the
// weight bytes one decode step must read.
#ifndef PHI3_ENGINE_TOOLS_BENCH_ROOFLINE_H_
#define PHI3_ENGINE_TOOLS_BENCH_ROOFLINE_H_

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "engine/gguf/gguf_file.h"

namespace phi3::bench {

// Seconds of the fastest of `repetitions` runs of body(t) on `num_threads`
// threads that start together (the slowest thread sets each run's time).
// REQUIRES: num_threads >= 1, repetitions >= 1.
double BestConcurrentSeconds(int num_threads, int repetitions,
                             absl::FunctionRef<void(int thread)> body);

// Read bandwidth in bytes/s: `num_threads` threads each sum their share of a
// `buffer_bytes` buffer (much larger than the caches), best of `repetitions`
// passes. Uses AVX2 loads when the CPU has them.
// REQUIRES: num_threads >= 1, buffer_bytes >= 1 MiB.
double MeasureReadBandwidth(int num_threads, int64_t buffer_bytes, int repetitions);

// Weight bytes read by one decode step: every 2-D tensor except the token
// embedding (one row of it is read per token), i.e. all layer matrices and
// the output head. Norm vectors are negligible and excluded.
int64_t DecodeBytesPerToken(const GgufFile& file);

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_ROOFLINE_H_
