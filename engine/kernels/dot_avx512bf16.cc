// The AVX-512 table with BF16 weights on AVX512_BF16's vdpbf16ps (this file
// alone is compiled with -mavx512bf16 added to the AVX-512 flags, so the
// rest of the AVX-512 code runs on CPUs without it). Same results as the
// emulated kernels of dot_avx512.cc (simd_bf16_ops.h); cpu_features.cc
// picks this table when the CPU has the instruction.
#define PHI3_VNNI 1
#define PHI3_WIDE_REGISTERS 1
#define PHI3_AVX512BF16 1
#include "engine/kernels/simd_bf16_ops.h"

namespace phi3::internal {

const KernelTable& Avx512Bf16KernelTable() {
  static const KernelTable table = [] {
    KernelTable t = Avx512KernelTable();
    SetBf16Kernels(&t);
    return t;
  }();
  return table;
}

}  // namespace phi3::internal
