// Progress of long engine work (loading a model, writing one), reported to
// whoever started it: the engine says what it is doing and how far it got,
// the caller decides how (and whether) to show it.
#ifndef PHI3_ENGINE_COMMON_PROGRESS_H_
#define PHI3_ENGINE_COMMON_PROGRESS_H_

#include <cstdint>
#include <functional>
#include <string_view>

namespace phi3 {

// `done_bytes` of `total_bytes` of `phase` ("packing weights"). Per phase,
// calls come in order of growing done_bytes, the first may have done_bytes 0
// and the last has done_bytes == total_bytes. Different phases may run at the
// same time on different threads, so the callee must be thread-safe. Empty =
// no reports.
using ProgressCallback =
    std::function<void(std::string_view phase, int64_t done_bytes, int64_t total_bytes)>;

}  // namespace phi3

#endif  // PHI3_ENGINE_COMMON_PROGRESS_H_
