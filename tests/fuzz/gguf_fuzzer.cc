// libFuzzer entry point for the GGUF reader (built only with clang; see
// CMakeLists.txt). Run: gguf_fuzzer -max_len=4096 corpus_dir
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/gguf/gguf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = phi3::GgufFile::OpenBuffer(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (f.ok()) {
    volatile uint64_t sum = 0;
    for (const phi3::GgufTensor& t : (*f)->tensors()) {
      for (uint64_t b = 0; b < t.num_bytes; ++b) sum = sum + t.data[b];
    }
  }
  return 0;
}
