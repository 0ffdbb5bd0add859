// The memory-bandwidth roofline of decode: the weight bytes one decode step
// must read (the bandwidth it is divided by: engine/kernels/read_bandwidth.h).
#ifndef PHI3_ENGINE_TOOLS_BENCH_ROOFLINE_H_
#define PHI3_ENGINE_TOOLS_BENCH_ROOFLINE_H_

#include <cstdint>

#include "engine/gguf/gguf_file.h"

namespace phi3::bench {

// Weight bytes read by one decode step: every 2-D tensor except the token
// embedding (one row of it is read per token), i.e. all layer matrices and
// the output head. Norm vectors are negligible and excluded.
int64_t DecodeBytesPerToken(const GgufFile& file);

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_ROOFLINE_H_
