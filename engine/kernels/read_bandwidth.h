// The decode roofline's bandwidth: the best sustained rate at which this
// machine's cores read memory. Shared by the benchmark tools (kernels_bench,
// phi3-bench); not part of the kernels library the engine links.
//
// Why several access patterns: decode kernels that prefetch ahead in
// software (the packed Q4_0 / Q8_0 / K-quant kernels) read faster than a
// plain load loop, which leaves the stream to the hardware prefetchers. A
// ceiling one of our kernels exceeds says nothing, so the test runs plain
// loads and loads with software prefetch at the distances our kernels use,
// and reports the fastest.
#ifndef PHI3_ENGINE_KERNELS_READ_BANDWIDTH_H_
#define PHI3_ENGINE_KERNELS_READ_BANDWIDTH_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"

namespace phi3 {

// Seconds of the fastest of `repetitions` runs of body(t) on `num_threads`
// threads that start together (the slowest thread sets each run's time).
// REQUIRES: num_threads >= 1, repetitions >= 1.
double BestConcurrentSeconds(int num_threads, int repetitions,
                             absl::FunctionRef<void(int thread)> body);

// A buffer size much larger than the last-level caches of the CPUs we run on.
inline constexpr int64_t kReadBandwidthBufferBytes = int64_t{1} << 30;

struct ReadBandwidth {
  double bytes_per_second = 0;
  std::string pattern;  // the access pattern that reached it, e.g. "avx512, prefetcht0 +2 KiB"
};

// A buffer for read passes: `num_threads` threads each sum (into registers:
// a pure read) a contiguous share of it. Backed by huge pages where the OS
// grants them (as the packed weights are) and written once, so every page is
// resident and distinct. Not thread-safe; each pass starts its own threads.
class ReadPassBuffer {
 public:
  // REQUIRES: num_threads >= 1, buffer_bytes >= 1 MiB.
  ReadPassBuffer(int num_threads, int64_t buffer_bytes);
  ~ReadPassBuffer();
  ReadPassBuffer(const ReadPassBuffer&) = delete;
  ReadPassBuffer& operator=(const ReadPassBuffer&) = delete;

  // Bytes read by one pass: buffer_bytes rounded down so that each thread's
  // share is a whole number of 4 KiB pages.
  int64_t bytes() const { return bytes_; }

  // Bytes/s of one pass with the access pattern named `pattern` (a
  // ReadBandwidth::pattern); 0 when this CPU has no pattern of that name.
  double PassBytesPerSecond(const std::string& pattern);

  // Every pattern this CPU can run, `repetitions` passes each, interleaved;
  // the fastest pass and its pattern. REQUIRES: repetitions >= 1.
  ReadBandwidth Fastest(int repetitions);

 private:
  int num_threads_;
  int64_t bytes_;
  uint8_t* data_;
  uint64_t sink_ = 0;  // keeps the sums observable
};

// `num_threads` threads each sum (into registers: a pure read) a contiguous
// share of a `buffer_bytes` buffer backed by huge pages where the OS grants
// them. Every access pattern this CPU can run (scalar; AVX2 and AVX-512
// loads, each plain and with prefetcht0 / prefetcht1 a few KiB ahead) gets
// `repetitions` passes, interleaved so that a burst of outside load does not
// sink one pattern; returns the fastest pass and its pattern
// (ReadPassBuffer(num_threads, buffer_bytes).Fastest(repetitions)).
// REQUIRES: num_threads >= 1, buffer_bytes >= 1 MiB, repetitions >= 1.
ReadBandwidth MeasureReadBandwidth(int num_threads, int64_t buffer_bytes, int repetitions);

}  // namespace phi3

#endif  // PHI3_ENGINE_KERNELS_READ_BANDWIDTH_H_
