// Compiled with AVX-512 flags (CMakeLists.txt); reached only after a CPU
// check.
#include <immintrin.h>

#include "engine/kernels/read_bandwidth_internal.h"

namespace phi3::internal {
namespace {

// As SumAvx2 (read_bandwidth_avx2.cc) with 64-byte loads: four accumulators,
// a step of 256 bytes, one prefetch per line.
template <int kLocality, int kAhead>
uint64_t SumAvx512(const uint8_t* data, int64_t num_bytes) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  for (int64_t i = 0; i < num_bytes; i += 256) {
    if constexpr (kAhead > 0) {
      for (int l = 0; l < 4; ++l) __builtin_prefetch(data + i + kAhead + 64 * l, 0, kLocality);
    }
    a = _mm512_add_epi64(a, _mm512_load_si512(data + i));
    b = _mm512_add_epi64(b, _mm512_load_si512(data + i + 64));
    c = _mm512_add_epi64(c, _mm512_load_si512(data + i + 128));
    d = _mm512_add_epi64(d, _mm512_load_si512(data + i + 192));
  }
  a = _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d));
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, a);
  uint64_t sum = 0;
  for (uint64_t lane : lanes) sum += lane;
  return sum;
}

}  // namespace

std::vector<ReadPattern> Avx512ReadPatterns() {
  return {{"avx512", &SumAvx512<3, 0>},
          {"avx512, prefetcht0 +2 KiB", &SumAvx512<3, 2048>},
          {"avx512, prefetcht0 +4 KiB", &SumAvx512<3, 4096>},
          {"avx512, prefetcht0 +8 KiB", &SumAvx512<3, 8192>},
          {"avx512, prefetcht0 +16 KiB", &SumAvx512<3, 16384>},
          {"avx512, prefetcht1 +4 KiB", &SumAvx512<2, 4096>},
          {"avx512, prefetcht1 +8 KiB", &SumAvx512<2, 8192>},
          {"avx512, prefetcht1 +16 KiB", &SumAvx512<2, 16384>}};
}

}  // namespace phi3::internal
