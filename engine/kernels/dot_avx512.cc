// AVX-512 kernels: the same blocked kernels as dot_avx2.cc with VNNI
// (vpdpbusd) integer dots and 32 vector registers (4x4 register tiles).
// On Zen 4 / Ice Lake class CPUs 256-bit VNNI runs at the same throughput
// per byte as 512-bit for these memory-bound dots.
#define PHI3_VNNI 1
#define PHI3_WIDE_REGISTERS 1
#include "engine/kernels/dot_simd_impl.h"

namespace phi3::internal {

const KernelTable& Avx512KernelTable() {
  static const KernelTable table = MakeSimdTable();
  return table;
}

}  // namespace phi3::internal
