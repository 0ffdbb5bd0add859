// Our side of phi3-bench. Two implementations: the Engine (scheduler,
// prefix cache, sampling: what the service runs) and the model driven
// directly (Phi3Model::Forward + argmax), used for figures the Engine cannot
// give yet or when --ours=model.
#ifndef PHI3_ENGINE_TOOLS_BENCH_OURS_RUNNER_H_
#define PHI3_ENGINE_TOOLS_BENCH_OURS_RUNNER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/tools/bench/bench_result.h"

namespace phi3::bench {

// tg128_vs_read's read passes: small enough that a pass lasts a few ms (the
// bandwidth can switch within seconds), far larger than the last-level cache.
inline constexpr int64_t kReadPassBytes = int64_t{256} << 20;

struct OursOptions {
  std::string model_path;
  int num_threads = 2;
  int parallel_tokens = 64;   // tokens per stream for parallel:N
  int max_streams = 64;       // largest N of parallel:N
  bool long_figures = true;   // tg128@2048 or ttft will run (KV sizing)
  // tg128_vs_read: the read pattern of its passes (a ReadBandwidth::pattern)
  // and the decode steps per repetition.
  std::string read_pattern;
  int read_pairs = 32;
};

class OursRunner {
 public:
  virtual ~OursRunner() = default;
  virtual std::string name() const = 0;  // "engine" or "model"
  // Unimplemented when this runner cannot measure `figure`.
  virtual absl::StatusOr<Measurement> Run(const std::string& figure) = 0;
};

// Phi3Model driven directly: tg128, pp512, tg128@2048, parallel:N (one
// Forward over N single-token slices per step), mem:f16, mem:q8_0,
// tg128_vs_read (needs single steps, which the Engine does not expose).
absl::StatusOr<std::unique_ptr<OursRunner>> NewModelRunner(const OursOptions& options);

// phi3::Engine: tg128, pp512, tg128@2048, parallel:N, ttft. Unimplemented
// when phi3-bench was built without engine/engine.cc.
absl::StatusOr<std::unique_ptr<OursRunner>> NewEngineRunner(const OursOptions& options);

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_OURS_RUNNER_H_
