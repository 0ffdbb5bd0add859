// Compiled with -mavx2 (CMakeLists.txt); reached only after a CPU check.
#include <immintrin.h>

#include "engine/kernels/read_bandwidth_internal.h"

namespace phi3::internal {
namespace {

// Four independent accumulators (a step of 128 bytes), so the loop is bound
// by memory, not by a dependency chain. kLocality: __builtin_prefetch's
// (3: prefetcht0, 2: prefetcht1); kAhead 0: no prefetch.
template <int kLocality, int kAhead>
uint64_t SumAvx2(const uint8_t* data, int64_t num_bytes) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (int64_t i = 0; i < num_bytes; i += 128) {
    if constexpr (kAhead > 0) {
      __builtin_prefetch(data + i + kAhead, 0, kLocality);
      __builtin_prefetch(data + i + kAhead + 64, 0, kLocality);
    }
    a = _mm256_add_epi64(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(data + i)));
    b = _mm256_add_epi64(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(data + i + 32)));
    c = _mm256_add_epi64(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(data + i + 64)));
    d = _mm256_add_epi64(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(data + i + 96)));
  }
  a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), a);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

}  // namespace

std::vector<ReadPattern> Avx2ReadPatterns() {
  return {{"avx2", &SumAvx2<3, 0>},
          {"avx2, prefetcht0 +2 KiB", &SumAvx2<3, 2048>},
          {"avx2, prefetcht0 +4 KiB", &SumAvx2<3, 4096>},
          {"avx2, prefetcht0 +8 KiB", &SumAvx2<3, 8192>},
          {"avx2, prefetcht0 +16 KiB", &SumAvx2<3, 16384>},
          {"avx2, prefetcht1 +4 KiB", &SumAvx2<2, 4096>},
          {"avx2, prefetcht1 +8 KiB", &SumAvx2<2, 8192>},
          {"avx2, prefetcht1 +16 KiB", &SumAvx2<2, 16384>}};
}

}  // namespace phi3::internal
