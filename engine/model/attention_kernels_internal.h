// Per-ISA attention primitives; each lives in a source file compiled with
// its own target flags and is only called after a CPUID check.
#ifndef PHI3_ENGINE_MODEL_ATTENTION_KERNELS_INTERNAL_H_
#define PHI3_ENGINE_MODEL_ATTENTION_KERNELS_INTERNAL_H_

#include "engine/model/attention.h"

namespace phi3::internal {

// AVX2 + FMA + F16C.
extern const AttentionKernels kAvx2AttentionKernels;

}  // namespace phi3::internal

#endif  // PHI3_ENGINE_MODEL_ATTENTION_KERNELS_INTERNAL_H_
