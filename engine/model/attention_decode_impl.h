// Decode P x V straight from an f16 pool, and the f16 conversions, written
// once over a vector-width traits class W (attention_kernels_avx2.cc: 8
// floats per ymm; attention_kernels_avx512.cc: 16 per zmm). Included only
// by those files, inside their anonymous namespace, so each copy is compiled
// with its own target flags. The results do not depend on W: the orders are
// those of attention.h, only the number of columns per register differs.
//
// W provides: F (float vector), kLanes (floats per vector), kMaxColumnRegs
// (column registers per chain that fit next to 4 chains), and the static
// ops Zero, Set1, Load and StoreU (unaligned), LoadF16 (kLanes f16 values),
// Add, Fma(a, b, c) = a * b + c, RoundToF16 (to the nearest f16, as f32),
// and ScoresDecodeF16N<NV>, the level's decode scores for head_dim = 16 NV
// with its prefetch list already free of null entries.
#ifndef PHI3_ENGINE_MODEL_ATTENTION_DECODE_IMPL_H_
#define PHI3_ENGINE_MODEL_ATTENTION_DECODE_IMPL_H_

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "engine/model/attention_kernels_internal.h"

namespace phi3::internal {
namespace {

// Asks for the cache lines of bytes [p, p + kBytes) to be brought into L2
// (the caller reads them within a few microseconds; L1 is too small for a
// head's rows at long contexts).
template <int kBytes>
inline void PrefetchRow(const uint8_t* p) {
  for (int i = 0; i < kBytes / 64; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(p + 64 * i), _MM_HINT_T1);
  }
  // The last line (rows need not start on a line).
  _mm_prefetch(reinterpret_cast<const char*>(p + kBytes - 1), _MM_HINT_T1);
}

template <class W>
void F16ToF32Simd(const uint16_t* x, float* dst, int n) {
  for (int i = 0; i < n; i += W::kLanes) W::StoreU(dst + i, W::LoadF16(x + i));
}

template <class W>
void RoundF16Simd(float* x, int n) {
  for (int i = 0; i < n; i += W::kLanes) W::StoreU(x + i, W::RoundToF16(W::Load(x + i)));
}

// P x V over the 16 lanes of the decode order: lane l's classes l, l + 16,
// l + 32, l + 48 are R fma chains of G vectors (columns [d0, d0 + G *
// kLanes)), positions l, l + 16, ... in order. Classes past position n - 1
// hold +0, and a chain is never -0 (it starts at +0 and an exact zero sum
// rounds to +0), so leaving out chains r >= R = ceil(n / 16) changes no bit.
// x[l][d] = (c_l + c_l+32) + (c_l+16 + c_l+48).
template <class W, int G, int R, bool kPrefetch, int kRowBytes>
void PvLanes(const float* p, const uint8_t* base, const int64_t* offsets, int n, int d0,
             int head_dim, float* x) {
  using F = typename W::F;
  for (int l = 0; l < 16; ++l) {
    F a[R][G];
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < G; ++c) a[r][c] = W::Zero();
    }
    for (int j0 = l; j0 < n; j0 += 64) {
      for (int r = 0; r < R; ++r) {
        const int j = j0 + 16 * r;
        if (j >= n) break;
        // The next lane's row of the same 16 positions (a lane ahead).
        if (kPrefetch && l < 15 && j + 1 < n) PrefetchRow<kRowBytes>(base + offsets[j + 1]);
        if (p[j] == 0.0f) continue;
        const F pj = W::Set1(p[j]);
        const uint16_t* v = reinterpret_cast<const uint16_t*>(base + offsets[j]) + d0;
        for (int c = 0; c < G; ++c) a[r][c] = W::Fma(W::LoadF16(v + W::kLanes * c), pj, a[r][c]);
      }
    }
    float* xl = x + l * head_dim + d0;
    for (int c = 0; c < G; ++c) {
      F s;
      if constexpr (R == 1) {
        s = a[0][c];
      } else if constexpr (R == 2) {
        s = W::Add(a[0][c], a[1][c]);
      } else if constexpr (R == 3) {
        s = W::Add(W::Add(a[0][c], a[2][c]), a[1][c]);
      } else {
        s = W::Add(W::Add(a[0][c], a[2][c]), W::Add(a[1][c], a[3][c]));
      }
      W::StoreU(xl + W::kLanes * c, s);
    }
  }
}

template <class W, int G, bool kPrefetch, int kRowBytes>
void PvLanesR(const float* p, const uint8_t* base, const int64_t* offsets, int n, int d0,
              int head_dim, float* x) {
  if (n <= 16) return PvLanes<W, G, 1, kPrefetch, kRowBytes>(p, base, offsets, n, d0, head_dim, x);
  if (n <= 32) return PvLanes<W, G, 2, kPrefetch, kRowBytes>(p, base, offsets, n, d0, head_dim, x);
  if (n <= 48) return PvLanes<W, G, 3, kPrefetch, kRowBytes>(p, base, offsets, n, d0, head_dim, x);
  return PvLanes<W, G, 4, kPrefetch, kRowBytes>(p, base, offsets, n, d0, head_dim, x);
}

// The columns in passes of kG registers from register kFirst on, the last
// pass taking what is left; the first pass prefetches rows a lane ahead.
template <class W, int kNumRegs, int kG, int kRowBytes, int kFirst = 0>
void PvPasses(const float* p, const uint8_t* base, const int64_t* offsets, int n, int head_dim,
              float* x) {
  constexpr int kPass = std::min(kG, kNumRegs - kFirst);
  PvLanesR<W, kPass, kFirst == 0, kRowBytes>(p, base, offsets, n, kFirst * W::kLanes, head_dim,
                                              x);
  if constexpr (kFirst + kPass < kNumRegs) {
    PvPasses<W, kNumRegs, kG, kRowBytes, kFirst + kPass>(p, base, offsets, n, head_dim, x);
  }
}

// NV = head_dim / 16. As few passes as kMaxColumnRegs allows, of equal size
// but the last.
template <class W, int NV>
void PvDecodeF16N(const float* p, const uint8_t* base, const int64_t* offsets, int n, float* x) {
  constexpr int kHd = 16 * NV;
  constexpr int kNumRegs = kHd / W::kLanes;
  constexpr int kNumPasses = (kNumRegs + W::kMaxColumnRegs - 1) / W::kMaxColumnRegs;
  constexpr int kG = (kNumRegs + kNumPasses - 1) / kNumPasses;
  PvPasses<W, kNumRegs, kG, 32 * NV>(p, base, offsets, n, kHd, x);
}

// AttentionTileKernels::scores_decode_f16. Null prefetch entries are dropped
// once here rather than tested per row.
template <class W>
void ScoresDecodeF16Simd(const float* q, const uint8_t* base, const int64_t* offsets, int n,
                         int head_dim, float* scores, const uint8_t* const* prefetch,
                         int num_prefetch) {
  const uint8_t* pf[4];
  int np = 0;
  for (int f = 0; f < num_prefetch && np < 4; ++f) {
    if (prefetch[f] != nullptr) pf[np++] = prefetch[f];
  }
  WithHeadChunks(head_dim, [&]<int NV>() {
    W::template ScoresDecodeF16N<NV>(q, base, offsets, n, scores, pf, np);
  });
}

// AttentionTileKernels::pv_decode_f16.
template <class W>
void PvDecodeF16Simd(const float* p, const uint8_t* base, const int64_t* offsets, int n,
                     int head_dim, float* out) {
  using F = typename W::F;
  alignas(64) float x[16 * 128];  // [lane][head_dim]
  WithHeadChunks(head_dim, [&]<int NV>() { PvDecodeF16N<W, NV>(p, base, offsets, n, x); });
  for (int d = 0; d < head_dim; d += W::kLanes) {  // tree16 over the lanes
    F s[8];
    for (int i = 0; i < 8; ++i) {
      s[i] = W::Add(W::Load(x + i * head_dim + d), W::Load(x + (i + 8) * head_dim + d));
    }
    for (int i = 0; i < 4; ++i) s[i] = W::Add(s[i], s[i + 4]);
    for (int i = 0; i < 2; ++i) s[i] = W::Add(s[i], s[i + 2]);
    W::StoreU(out + d, W::Add(s[0], s[1]));
  }
}

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_MODEL_ATTENTION_DECODE_IMPL_H_
