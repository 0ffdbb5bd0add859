#include "engine/kernels/cpu_features.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "engine/kernels/kernel_table.h"
#include "engine/kernels/packed_internal.h"

namespace phi3 {
namespace {

bool CpuHasAvx2() {
#if defined(__x86_64__)
  // libgcc's cpuinfo also checks (via xgetbv) that the OS saves ymm/zmm state.
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

bool CpuHasAvx512() {
#if defined(__x86_64__)
  return CpuHasAvx2() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

// CpuHasAmxInt8(), uncached: CPUID.(7,0):EDX bits 24 and 25, XCR0 bits 17
// (XTILECFG) and 18 (XTILEDATA) set by the OS, and on Linux the per-process
// permission for tile data (ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA;
// without it the first tile load faults).
bool DetectAmxInt8() {
#if defined(__x86_64__) && defined(__linux__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  if (((edx >> 24) & 1) == 0 || ((edx >> 25) & 1) == 0) return false;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || ((ecx >> 27) & 1) == 0) return false;  // OSXSAVE
  uint32_t xcr0_lo = 0, xcr0_hi = 0;
  asm volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  constexpr uint32_t kTileState = (1u << 17) | (1u << 18);
  if ((xcr0_lo & kTileState) != kTileState) return false;
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

bool Supported(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar: return true;
    case SimdLevel::kAvx2: return CpuHasAvx2();
    case SimdLevel::kAvx512: return CpuHasAvx512();
  }
  return false;
}

SimdLevel InitialLevel() {
  SimdLevel level = DetectedSimdLevel();
  const char* env = std::getenv("PHI3_KERNELS");
  if (env != nullptr && *env != '\0') {
    SimdLevel wanted = level;
    if (std::strcmp(env, "scalar") == 0) {
      wanted = SimdLevel::kScalar;
    } else if (std::strcmp(env, "avx2") == 0) {
      wanted = SimdLevel::kAvx2;
    } else if (std::strcmp(env, "avx512") == 0) {
      wanted = SimdLevel::kAvx512;
    } else {
      std::fprintf(stderr, "phi3: PHI3_KERNELS=%s is not scalar|avx2|avx512; ignored\n", env);
    }
    if (Supported(wanted)) {
      level = wanted;
    } else {
      std::fprintf(stderr, "phi3: PHI3_KERNELS=%s is not supported by this CPU; using %s\n",
                   env, std::string(SimdLevelName(level)).c_str());
    }
  }
  return level;
}

const internal::KernelTable& Avx512TableForCpu() {
  return CpuHasAvx512Bf16() ? internal::Avx512Bf16KernelTable() : internal::Avx512KernelTable();
}

const internal::KernelTable& TableFor(SimdLevel level) {
  return SelectBySimdLevel(level, &internal::ScalarKernelTable, &internal::Avx2KernelTable,
                           &Avx512TableForCpu);
}

struct ActiveState {
  std::atomic<int> level;
  std::atomic<const internal::KernelTable*> table;
  ActiveState() {
    const SimdLevel l = InitialLevel();
    level.store(static_cast<int>(l));
    table.store(&TableFor(l));
  }
};

ActiveState& State() {
  static ActiveState* state = new ActiveState();
  return *state;
}

}  // namespace

std::string_view SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar: return "scalar";
    case SimdLevel::kAvx2: return "avx2";
    case SimdLevel::kAvx512: return "avx512";
  }
  return "unknown";
}

SimdLevel DetectedSimdLevel() {
  if (CpuHasAvx512()) return SimdLevel::kAvx512;
  if (CpuHasAvx2()) return SimdLevel::kAvx2;
  return SimdLevel::kScalar;
}

std::vector<SimdLevel> SupportedSimdLevels() {
  std::vector<SimdLevel> levels;
  for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (Supported(l)) levels.push_back(l);
  }
  return levels;
}

bool CpuHasAvx512Bf16() {
#if defined(__x86_64__)
  return CpuHasAvx512() && __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

bool CpuIsAmdFamily1AhOrLater() {
#if defined(__x86_64__)
  static const bool is = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return false;
    // "AuthenticAMD" in ebx, edx, ecx.
    if (ebx != 0x68747541 || edx != 0x69746e65 || ecx != 0x444d4163) return false;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
    const unsigned base = (eax >> 8) & 0xF;
    const unsigned family = base == 0xF ? base + ((eax >> 20) & 0xFF) : base;
    return family >= 0x1A;
  }();
  return is;
#else
  return false;
#endif
}

bool CpuHasAmxInt8() {
  static const bool has = CpuHasAvx512() && DetectAmxInt8();  // the epilogue is AVX-512
  return has;
}

bool UseAmxTiles() {
  static const bool use = [] {
    if (!CpuHasAmxInt8()) return false;
    const char* env = std::getenv("PHI3_AMX");
    if (env != nullptr && std::strcmp(env, "off") == 0) return false;
    if (!internal::AmxTilesSelfCheck()) {
      std::fprintf(stderr,
                   "phi3: the AMX tile unit did not compute the expected products; "
                   "Q4_0 / Q4_K run on the AVX-512 kernels instead\n");
      return false;
    }
    return true;
  }();
  return use;
}

bool AmxTilesActive() { return ActiveSimdLevel() == SimdLevel::kAvx512 && UseAmxTiles(); }

SimdLevel ActiveSimdLevel() {
  return static_cast<SimdLevel>(State().level.load(std::memory_order_relaxed));
}

bool SetSimdLevel(SimdLevel level) {
  if (!Supported(level)) return false;
  State().level.store(static_cast<int>(level));
  State().table.store(&TableFor(level));
  return true;
}

namespace internal {

const KernelTable& ActiveKernelTable() {
  return *State().table.load(std::memory_order_acquire);
}

const TypeKernels* KernelTable::ForWeight(TensorType w) const {
  switch (w) {
    case TensorType::kF32: return &f32;
    case TensorType::kF16: return &f16;
    case TensorType::kBF16: return &bf16;
    case TensorType::kQ8_0: return &q8_0;
    case TensorType::kQ4_0: return &q4_0;
    case TensorType::kQ4_1: return &q4_1;
    case TensorType::kQ4_K: return &q4_k;
    case TensorType::kQ5_K: return &q5_k;
    case TensorType::kQ6_K: return &q6_k;
    default: return nullptr;
  }
}

QuantizeFn KernelTable::ForActivation(TensorType act) const {
  switch (act) {
    case TensorType::kF16: return to_f16;
    case TensorType::kBF16: return to_bf16;
    case TensorType::kQ8_0: return to_q8_0;
    case TensorType::kQ8_1: return to_q8_1;
    case TensorType::kQ8_K: return to_q8_k;
    default: return nullptr;
  }
}

}  // namespace internal
}  // namespace phi3
