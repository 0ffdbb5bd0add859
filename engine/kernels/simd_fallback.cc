// Placeholder tables until the SIMD paths land: the scalar kernels.
#include "engine/kernels/kernel_table.h"

namespace phi3::internal {
const KernelTable& Avx2KernelTable() { return ScalarKernelTable(); }
const KernelTable& Avx512KernelTable() { return ScalarKernelTable(); }
}  // namespace phi3::internal
