// Progress of long work (loading a model, writing one) on stderr: one line
// rewritten in place on a terminal, showing every stage under way; plain log
// lines otherwise (when a stage starts, every 25%, and at its end), so logs
// stay readable. A finished stage leaves one line with its duration.
//
// Thread safety: Update may be called from several threads, for different
// stages at once (the engine hashes the model file while packing weights).
#ifndef PHI3_CLI_PROGRESS_H_
#define PHI3_CLI_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/common/progress.h"

namespace phi3::cli {

class Progress {
 public:
  // `program` prefixes each line; `out` is stderr unless testing; `terminal`
  // (1 or 0) defaults to whether `out` is a terminal.
  explicit Progress(std::string program, std::FILE* out = stderr, int terminal = -1);
  ~Progress();  // ends a pending terminal line

  // `done` of `total` bytes of `stage`; done >= total ends the stage.
  void Update(absl::string_view stage, int64_t done, int64_t total);
  // Forwards to Update; must not be called after *this is destroyed.
  ProgressCallback Callback();
  // Ends a pending terminal line, so that other output starts on its own.
  void EndLine();

 private:
  struct Stage {
    std::string name;
    std::string text;  // "packing weights 40% (800 MiB of 2.0 GiB)"
    absl::Time start;
    int num_updates = 0;
    int last_quarter = -1;  // plain lines: the last quarter printed
    bool finished = false;
  };
  Stage& StageLocked(absl::string_view name, int64_t done, int64_t total)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RedrawLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndLineLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string program_;
  std::FILE* const out_;
  const bool terminal_;
  absl::Mutex mu_;
  std::vector<Stage> stages_ ABSL_GUARDED_BY(mu_);  // in order of their first update
  absl::Time last_draw_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool line_open_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace phi3::cli

#endif  // PHI3_CLI_PROGRESS_H_
