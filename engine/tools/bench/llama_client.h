// The llama.cpp side of phi3-bench: a child process running
// `node tests/oracle/bench.mjs --serve` (node-llama-cpp's prebuilt CPU
// libraries) that keeps the model loaded and runs one figure per request, so
// phi3-bench can alternate ours / llama.cpp within one run.
//
// Thread safety: thread-compatible (one caller at a time).
#ifndef PHI3_ENGINE_TOOLS_BENCH_LLAMA_CLIENT_H_
#define PHI3_ENGINE_TOOLS_BENCH_LLAMA_CLIENT_H_

#include <sys/types.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/tools/bench/flat_json.h"

namespace phi3::bench {

struct LlamaClientOptions {
  std::string node = "node";      // executable, looked up in PATH
  std::string script;             // path of tests/oracle/bench.mjs
  std::string model_path;
  int num_threads = 2;
  int parallel_tokens = 64;       // tokens per stream for parallel:N
};

class LlamaClient {
 public:
  // Starts the child and waits for its "ready" line (model loaded, warmed
  // up). Errors: Internal when the process cannot start or exits early
  // (its stderr is inherited, so node's message is visible).
  static absl::StatusOr<std::unique_ptr<LlamaClient>> Start(const LlamaClientOptions& options);
  // Closes the child's stdin (it exits at EOF) and reaps it.
  ~LlamaClient();

  // The ready line: cpu_variant, system_info, threads, flash_attention, ...
  const FlatJson& info() const { return info_; }

  // Runs one figure ("tg128", "parallel:16", ...). The reply has "value"
  // and figure-specific fields; a reply with "error" becomes Internal.
  absl::StatusOr<FlatJson> Run(const std::string& figure);

 private:
  LlamaClient() = default;
  absl::StatusOr<std::string> ReadLine();

  pid_t pid_ = -1;
  std::FILE* to_child_ = nullptr;
  std::FILE* from_child_ = nullptr;
  FlatJson info_;
};

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_LLAMA_CLIENT_H_
