#include "engine/tools/bench/roofline.h"

namespace phi3::bench {

int64_t DecodeBytesPerToken(const GgufFile& file) {
  int64_t total = 0;
  for (const GgufTensor& t : file.tensors()) {
    if (t.dims.size() < 2 || t.name == "token_embd.weight") continue;
    total += static_cast<int64_t>(t.num_bytes);
  }
  return total;
}

}  // namespace phi3::bench
