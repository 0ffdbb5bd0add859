// The access patterns of MeasureReadBandwidth (read_bandwidth.h), one list
// per instruction set, each compiled with its own flags.
#ifndef PHI3_ENGINE_KERNELS_READ_BANDWIDTH_INTERNAL_H_
#define PHI3_ENGINE_KERNELS_READ_BANDWIDTH_INTERNAL_H_

#include <cstdint>
#include <vector>

namespace phi3::internal {

struct ReadPattern {
  const char* name;
  // Sum of the 64-bit words of [data, data + num_bytes), in any order.
  // REQUIRES: data 64-byte aligned, num_bytes % 256 == 0.
  uint64_t (*sum)(const uint8_t* data, int64_t num_bytes);
};

// Each list: plain loads, then prefetcht0 2, 4, 8, 16 KiB and prefetcht1 4,
// 8, 16 KiB ahead: the distances of our decode kernels (the packed ones a
// few blocks or one super-block of 16 rows ahead, about 1.7 to 3.4 KiB; the
// F16/BF16 ones 8 KiB) and beyond.
// Call only when DetectedSimdLevel() is at least kAvx2 / kAvx512.
std::vector<ReadPattern> Avx2ReadPatterns();    // read_bandwidth_avx2.cc
std::vector<ReadPattern> Avx512ReadPatterns();  // read_bandwidth_avx512.cc

}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_READ_BANDWIDTH_INTERNAL_H_
