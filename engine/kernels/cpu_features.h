// Run-time choice of the SIMD code path used by every kernel.
//
// The level is chosen once, on first use, as the best the CPU and OS support,
// unless the environment variable PHI3_KERNELS=scalar|avx2|avx512 asks for a
// lower one (a level above what the machine supports is ignored with a
// warning on stderr). Tests and tools may force a level with SetSimdLevel.
#ifndef PHI3_ENGINE_KERNELS_CPU_FEATURES_H_
#define PHI3_ENGINE_KERNELS_CPU_FEATURES_H_

#include <string_view>
#include <vector>

namespace phi3 {

enum class SimdLevel {
  kScalar = 0,
  kAvx2 = 1,    // AVX2 + FMA + F16C
  kAvx512 = 2,  // AVX-512 F/BW/VL/DQ + VNNI
};

std::string_view SimdLevelName(SimdLevel level);

// The best level this CPU + OS supports (zmm state enabled by the OS).
SimdLevel DetectedSimdLevel();

// Every level this machine can run, lowest first (always includes kScalar).
std::vector<SimdLevel> SupportedSimdLevels();

// The level kernels currently use.
SimdLevel ActiveSimdLevel();

// Whether the kAvx512 level runs BF16 weights on the AVX512_BF16 instruction
// (vdpbf16ps) rather than on fmas: the CPU has it and the kAvx512 set. The
// results are the same either way; only the speed differs.
bool CpuHasAvx512Bf16();

// Whether the CPU is an AMD of family 1Ah (Zen 5) or later: a few kernels
// pick a tuning measured to differ from Zen 4 by it (never the results).
bool CpuIsAmdFamily1AhOrLater();

// Whether this process can run AMX-INT8 tile instructions next to the
// kAvx512 set: the CPU has AMX-TILE and AMX-INT8, the OS enabled tile state
// (XCR0) and granted this process tile data (Linux arch_prctl, requested
// here on the first call).
bool CpuHasAmxInt8();

// Whether the kAvx512 level runs Q4_0 and Q4_K tiles of 4 or more tokens
// on AMX-INT8 (TDPBSSD): CpuHasAmxInt8(), the environment variable PHI3_AMX
// is not "off", and a start-up check of the tile unit against the same
// products in C++ passed (a failure is reported on stderr). The results are
// the same either way (the tiles' int32 sums are exact); only the speed
// differs.
bool UseAmxTiles();
// UseAmxTiles() and the active level is kAvx512: matmuls run now use AMX.
bool AmxTilesActive();

// Forces the level kernels use. Returns false (and changes nothing) if the
// machine cannot run it. Thread safety: must not race with running kernels
// (call it at start-up or between tests).
bool SetSimdLevel(SimdLevel level);

// The one way a kernel family is dispatched: the family's table for `level`,
// given one function per level that returns it. Only the chosen function is
// called, so a level's code (compiled with that level's flags) is never
// reached on a CPU that cannot run it. Every family has an entry for every
// level; a level without kernels of its own names the lower level's function.
template <typename Table>
const Table& SelectBySimdLevel(SimdLevel level, const Table& (*scalar)(),
                               const Table& (*avx2)(), const Table& (*avx512)()) {
  switch (level) {
    case SimdLevel::kAvx512:
      return avx512();
    case SimdLevel::kAvx2:
      return avx2();
    case SimdLevel::kScalar:
      break;
  }
  return scalar();
}

}  // namespace phi3

#endif  // PHI3_ENGINE_KERNELS_CPU_FEATURES_H_
