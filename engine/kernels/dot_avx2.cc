// AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c only).
#include "engine/kernels/dot_simd_impl.h"

namespace phi3::internal {

const KernelTable& Avx2KernelTable() {
  static const KernelTable table = MakeSimdTable();
  return table;
}

}  // namespace phi3::internal
