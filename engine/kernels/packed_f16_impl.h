// Packed F16 / BF16 tiles (PackedF16Block, packed_internal.h), written once over a
// vector traits class V (packed_f16_avx512.cc: 16 rows per zmm;
// packed_f16_avx2.cc: 8 rows per ymm, a group in two halves). Included only
// by those files, inside their anonymous namespace.
//
// Each (row, token) has kLanes f32 lanes (F16: 64 for decode, 16 for prompt
// batches; BF16: 8, as BF16Ops in simd_block_ops.h); a row's lane l is
// vector lane row of lane vector l, fed by one fma per element e = l (mod
// kLanes), elements in order: the row-major kernels' arithmetic exactly. A span of elements (16 KB of weights) stays in L1
// while sub-tiles of U tokens x G lanes, their accumulators in registers,
// pass over it; the lane vectors live in memory between spans.
//
// V provides: F (float vector), kRows (rows per vector), kAcc (accumulator
// registers a sub-tile may use), kU (largest U), and the static ops below
// (LoadF16 / LoadBF16: the 16 rows' values of one element, widened).
#ifndef PHI3_ENGINE_KERNELS_PACKED_F16_IMPL_H_
#define PHI3_ENGINE_KERNELS_PACKED_F16_IMPL_H_

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>

#include "engine/kernels/packed_internal.h"

namespace phi3::internal {
namespace {

template <class V, int kLanes, bool kBF16 = false>
struct F16Tiles {
  using F = typename V::F;
  static constexpr int kW = V::kRows;
  static constexpr int64_t kSpan = 8 * 64;  // elements
  static constexpr int kSpanLines = kSpan * kPackRows * 2 / 64;

  // Lanes per sub-tile of U tokens: the most (<= 16) whose accumulators fit.
  static constexpr int LanesFor(int u) {
    int g = kLanes < 16 ? kLanes : 16;
    while (g * u > V::kAcc) g /= 2;
    return g;
  }

  // Tokens [0, U) (act: their f32 activations, act_stride apart; facc:
  // their lane vectors, [U][kLanes]) x rows [r0, r0 + kW) over elements
  // [e0, e1), every lane group in turn. ahead: the next span, prefetched
  // into L2 a share per lane group (or nullptr).
  template <int U>
  static void Pass(const uint16_t* w, int r0, int64_t e0, int64_t e1, const float* act,
                   int64_t act_stride, F* facc, const char* ahead) {
    constexpr int G = LanesFor(U);
    constexpr int kGroups = kLanes / G;
    constexpr int kLinesPerGroup = (kSpanLines + kGroups - 1) / kGroups;
    for (int l0 = 0; l0 < kLanes; l0 += G) {
      if (ahead != nullptr) {
        const int first = kLinesPerGroup * (l0 / G);
        for (int l = first; l < std::min(kSpanLines, first + kLinesPerGroup); ++l) {
          _mm_prefetch(ahead + 64 * l, _MM_HINT_T1);
        }
      }
      F acc[U][G];
      for (int u = 0; u < U; ++u) {
        for (int g = 0; g < G; ++g) acc[u][g] = facc[u * kLanes + l0 + g];
      }
      for (int64_t e = e0 + l0; e < e1; e += kLanes) {
#pragma GCC unroll 16
        for (int g = 0; g < G; ++g) {
          const uint16_t* p = w + (e + g) * kPackRows + r0;
          const F wv = kBF16 ? V::LoadBF16(p) : V::LoadF16(p);
#pragma GCC unroll 6
          for (int u = 0; u < U; ++u) {
            acc[u][g] = V::Fma(wv, V::Set1(act[u * act_stride + e + g]), acc[u][g]);
          }
        }
      }
      for (int u = 0; u < U; ++u) {
        for (int g = 0; g < G; ++g) facc[u * kLanes + l0 + g] = acc[u][g];
      }
    }
  }

  using PassFn = void (*)(const uint16_t*, int, int64_t, int64_t, const float*, int64_t, F*,
                          const char*);
  template <int... U>
  static constexpr std::array<PassFn, sizeof...(U)> Passes(std::integer_sequence<int, U...>) {
    return {&Pass<U + 1>...};
  }

  // The lane vectors of one (token, row vector) reduced in the row-major
  // order (PackedF16Block; BF16: HorizontalSum's 8-lane tree).
  static F Reduce(const F* f) {
    constexpr int kTree = kLanes == 8 ? 8 : 16;
    F s[kTree];
    for (int m = 0; m < kTree; ++m) {
      s[m] = kLanes == 64 ? V::Add(V::Add(f[m], f[32 + m]), V::Add(f[16 + m], f[48 + m])) : f[m];
    }
    for (int half = kTree / 2; half >= 1; half /= 2) {
      for (int i = 0; i < half; ++i) s[i] = V::Add(s[i], s[i + half]);
    }
    return s[0];
  }

  // PackedTileFn: tiles of up to 16 tokens, each over the group's vectors of
  // kW rows. REQUIRES: n % 64 == 0.
  static void Run(const uint8_t* group, int nr, const uint8_t*, int64_t, const uint8_t* aux,
                  int64_t aux_stride, int nt, int64_t n, float* y, int64_t y_stride) {
    static constexpr auto kPasses = Passes(std::make_integer_sequence<int, V::kU>());
    const uint16_t* w = reinterpret_cast<const uint16_t*>(group);
    const float* act = reinterpret_cast<const float*>(aux);
    const int64_t act_stride = aux_stride / static_cast<int64_t>(sizeof(float));
    alignas(64) F facc[16 * kLanes];  // [token][lane]
    for (int r0 = 0; r0 < nr; r0 += kW) {
      const int nrv = std::min(kW, nr - r0);
      for (int t0 = 0; t0 < nt; t0 += 16) {
        const int count = std::min(16, nt - t0);
        for (int i = 0; i < count * kLanes; ++i) facc[i] = V::Zero();
        for (int64_t e0 = 0; e0 < n; e0 += kSpan) {
          const int64_t e1 = std::min(n, e0 + kSpan);
          // The next span (the next group's start after the last one: a
          // thread's groups are contiguous); the second half of an AVX2
          // group finds its lines cached by the first.
          const char* ahead =
              r0 == 0 ? reinterpret_cast<const char*>(w + e1 * kPackRows) : nullptr;
          for (int t = 0; t < count;) {
            const int u = std::min(V::kU, count - t);
            kPasses[u - 1](w, r0, e0, e1, act + (t0 + t) * act_stride, act_stride,
                           facc + t * kLanes, t == 0 ? ahead : nullptr);
            t += u;
          }
        }
        for (int t = 0; t < count; ++t) {
          V::StoreRows(y + (t0 + t) * y_stride + r0, Reduce(facc + t * kLanes), nrv);
        }
      }
    }
  }
};

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_PACKED_F16_IMPL_H_
