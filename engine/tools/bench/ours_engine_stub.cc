// Built instead of ours_engine_runner.cc while engine/engine.cc does not exist.
#include "engine/tools/bench/ours_runner.h"

namespace phi3::bench {

absl::StatusOr<std::unique_ptr<OursRunner>> NewEngineRunner(const OursOptions& options) {
  return absl::UnimplementedError(
      "phi3-bench was built without the Engine (engine/engine.cc); use --ours=model");
}

}  // namespace phi3::bench
