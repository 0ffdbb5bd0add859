// Packed Q5_K / Q6_K tiles, written once over a vector-width traits class V
// (packed_k56_avx512.cc: 16 rows per zmm; packed_k56_avx2.cc: 8 rows per
// ymm, a group in two halves). Included only by those files, inside their
// anonymous namespace.
//
// Rounding: exactly the row-major kernels' (K45Ops<true> / Q6_KOps in
// simd_block_ops.h, ggml_vec_dot_q5_K_q8_K / _q6_K): per row, 8 int32 lane
// sums per super-block (lane k: sub-blocks' elements 4k .. 4k+3, times the
// sub-block scale; exact in any order), acc_k = fma(d_a * d_w, float(lane_k),
// acc_k), result ((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5) + (acc3 +
// acc7)) [+ Q5_K's mins term, fma(-(d_a * dmin_w), float(summ), summs)].
// Here a vector lane is a row, so the 8 lane sums are 8 vectors per token.
//
// V provides: I (int vector), F (float vector), kRows (rows per vector), kU
// (tokens per register sub-tile), kDirectU (tokens per sub-tile of the
// direct tiles, 0 for none: see DirectTile), and the static ops used below.
#ifndef PHI3_ENGINE_KERNELS_PACKED_K56_IMPL_H_
#define PHI3_ENGINE_KERNELS_PACKED_K56_IMPL_H_

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <utility>

#include "engine/kernels/packed_internal.h"
#include "engine/kernels/quantize.h"

namespace phi3::internal {
namespace {

// kL1: the one-token tiles' prefetch hint (below).
template <class V, bool kQ6, bool kL1 = false>
struct K56 {
  using I = typename V::I;
  using F = typename V::F;
  using Block = std::conditional_t<kQ6, PackedQ6KBlock, PackedQ5KBlock>;
  static constexpr int kW = V::kRows;
  // Prefetch distance in super-blocks; into L2 (_MM_HINT_T1), except for
  // one-token tiles when kL1 (_MM_HINT_T0), chosen per CPU
  // (packed_k56_avx512.cc). Measured from DRAM, 1 token: on Zen 4, Q6_K, T0
  // 13-19 GB/s, T1 22-27 GB/s (row-major: 20), 2-8 blocks ahead all alike;
  // on Zen 5 T0 is faster. Wider tiles were measured with T1 only.
  static constexpr int kAhead = 4;

  // Unpacked quants (0..31 / 0..63) of chunk (j, k) of rows [r0, r0 + kW).
  static I Chunk(const Block* blk, int r0, int j, int k) {
    const I low = V::Set1I8(0x0F);
    if constexpr (!kQ6) {
      const I v = V::Load(blk->lane[k].qs[j / 2][r0]);
      const I nib = (j & 1) ? V::And(V::template Srli16<4>(v), low) : V::And(v, low);
      return V::AddBit4(nib, V::Load(blk->lane[k].qh[r0]), static_cast<uint8_t>(1u << j));
    } else {
      const int h = j / 4, s = j % 4;
      const I l = V::Load(blk->lane[k].ql[2 * h + s % 2][r0]);
      const I qh = V::Load(blk->lane[k].qh[h][r0]);
      const I nib = (s / 2) ? V::And(V::template Srli16<4>(l), low) : V::And(l, low);
      I hi;  // bits 2s, 2s+1 of qh at bits 4, 5 (16-bit shifts of byte-masked bits)
      if (s == 0) {
        hi = V::template Slli16<4>(V::And(qh, V::Set1I8(0x03)));
      } else if (s == 1) {
        hi = V::template Slli16<2>(V::And(qh, V::Set1I8(0x0C)));
      } else if (s == 2) {
        hi = V::And(qh, V::Set1I8(0x30));
      } else {
        hi = V::template Srli16<2>(V::And(qh, V::Set1I8(static_cast<char>(0xC0))));
      }
      return V::Or(nib, hi);
    }
  }

  // i16 pair {x, x} per row from a widened (i32) scale vector.
  static I Pair(I x) { return V::Or(V::And(x, V::Set1I32(0xFFFF)), V::template Slli32<16>(x)); }

  // Per super-block state shared by every token of a tile. The vectors stay
  // in L1 (read as memory operands): in registers they would crowd out the
  // lane sums (Q6_K alone has 24).
  struct Unpacked {
    alignas(64) I sc[kQ6 ? 16 : 8];  // i16 scale pairs: Q5_K per sub-block j; Q6_K per 16 elements
    alignas(64) I aux[kQ6 ? 8 : 4];  // Q6_K: {sc_2k, sc_2k+1} (bsum pairs k); Q5_K: {m_2p, m_2p+1}
    F dw, dmw;
  };
  static void UnpackScales(const Block* blk, int r0, Unpacked* u) {
    u->dw = V::HalfToFloat(blk->d + r0);
    if constexpr (!kQ6) {
      u->dmw = V::HalfToFloat(blk->dmin + r0);
      for (int j = 0; j < 8; ++j) V::Store(&u->sc[j], Pair(V::WidenU8(blk->scales[j] + r0)));
      for (int p = 0; p < 4; ++p) V::Store(&u->aux[p], V::WidenPairsU8(blk->mins[p][r0]));
    } else {
      for (int k = 0; k < 8; ++k) {
        const I lo = V::WidenS8(blk->scales[2 * k] + r0);
        const I hi = V::WidenS8(blk->scales[2 * k + 1] + r0);
        V::Store(&u->sc[2 * k], Pair(lo));
        V::Store(&u->sc[2 * k + 1], Pair(hi));
        V::Store(&u->aux[k], V::Or(V::And(lo, V::Set1I32(0xFFFF)), V::template Slli32<16>(hi)));
      }
    }
  }
  static I Scale(const Unpacked& u, int j, int k) {
    if constexpr (kQ6) {
      return V::Load(&u.sc[2 * j + k / 4]);
    } else {
      (void)k;
      return V::Load(&u.sc[j]);
    }
  }

  // Prefetches the k-th eighth (k in 0..7) of the super-block at `ahead`
  // (nullptr: nothing) into L1 (kL1Hint) or L2, so a pass spreads one
  // super-block's lines over its 8 chunk columns.
  template <bool kL1Hint>
  static void PrefetchEighth(const char* ahead, int k) {
    if (ahead == nullptr) return;
    constexpr int kLines = (sizeof(Block) + 63) / 64;
    constexpr int kLinesPerK = (kLines + 7) / 8;
    for (int l = kLinesPerK * k; l < std::min(kLines, kLinesPerK * (k + 1)); ++l) {
      _mm_prefetch(ahead + 64 * l, kL1Hint ? _MM_HINT_T0 : _MM_HINT_T1);
    }
  }

  // Tokens [0, U) of a pass over one super-block: lane k's sums of all U
  // tokens stay in registers while the 8 chunks (j, k) are unpacked once
  // each and serve every token, then go through one fma each into facc.
  // act: the tokens' Q8_K quants ([U][256], contiguous so that every
  // broadcast is a constant offset); bsp: Q6_K's bsum pairs ([U][8]).
  // ahead: a super-block to prefetch, an eighth per k (or nullptr), into L1
  // if kL1Hint, else L2.
  template <int U, bool kL1Hint>
  static void Pass(const Block* blk, int r0, const Unpacked& up, const int8_t* act,
                   const int32_t* bsp, const F* dd, F (*facc)[8], const char* ahead) {
#pragma GCC unroll 1
    for (int k = 0; k < 8; ++k) {
      PrefetchEighth<kL1Hint>(ahead, k);
      // kChains independent sums per token (sub-blocks j % kChains) keep the
      // multiply-add pipes busy when few tokens share a chunk; int32 sums
      // are exact in any order.
      constexpr int kChains = U >= 4 ? 1 : U >= 2 ? 2 : 4;
      I part[kChains][U];
      for (int c = 0; c < kChains; ++c) {
        for (int u = 0; u < U; ++u) part[c][u] = V::ZeroI();
      }
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        const I w = Chunk(blk, r0, j, k);
        const I s = Scale(up, j, k);
        I* acc = part[j % kChains];
#pragma GCC unroll 16
        for (int u = 0; u < U; ++u) {
          acc[u] = V::DotPairs(acc[u], V::Maddubs(w, V::Bcast4(act + 256 * u + 32 * j + 4 * k)), s);
        }
      }
      I acc[U];
      for (int u = 0; u < U; ++u) {
        acc[u] = part[0][u];
        for (int c = 1; c < kChains; ++c) acc[u] = V::AddI32(acc[u], part[c][u]);
      }
      if constexpr (kQ6) {
        const I sc_pairs = V::Load(&up.aux[k]);
        for (int u = 0; u < U; ++u) {
          const I corr = V::Madd16(sc_pairs, V::Set1I32(bsp[8 * u + k]));
          acc[u] = V::SubI32(acc[u], V::template Slli32<5>(corr));
        }
      }
      for (int u = 0; u < U; ++u) facc[u][k] = V::Fmadd(dd[u], V::CvtI32(acc[u]), facc[u][k]);
    }
  }

  // Passes of up to V::kU tokens (the register budget) over tokens [T0, T).
  template <int T0, int T, bool kL1Hint>
  static void Passes(const Block* blk, int r0, const Unpacked& up, const int8_t* act,
                     const int32_t* bsp, const F* dd, F (*facc)[8], const char* ahead) {
    if constexpr (T0 < T) {
      constexpr int U = std::min(V::kU, T - T0);
      Pass<U, kL1Hint>(blk, r0, up, act + 256 * T0, bsp + 8 * T0, dd + T0, facc + T0, ahead);
      Passes<T0 + U, T, kL1Hint>(blk, r0, up, act, bsp, dd, facc, nullptr);
    }
  }

  // Tokens [0, U) of a direct sub-tile of chunk column k: w holds the 8
  // unpacked chunks (j, k); each token's quants are broadcast straight from
  // its Q8_K block (rows: token 0's block, a_stride bytes to the next).
  // Always inlined into DirectPass: GCC otherwise calls some or all of a
  // tile's sub-tiles (Q6_K: all four), which then reload the chunks from the
  // stack, reload the scales and pay a call with vzeroupper per sub-tile.
  // Zen 5, 16 tokens, weights in L2 (one thread): Q6_K 153-158 -> 194-197
  // G MAC/s, Q5_K 195-200 -> 205-214.
  template <int U>
  __attribute__((always_inline)) static void DirectSub(const I* w, const Unpacked& up, int k, const uint8_t* rows,
                        int64_t a_stride, const F* dd, F (*facc)[8]) {
    const BlockQ8_K* ab[U];
    I acc[U];
    for (int u = 0; u < U; ++u) {
      ab[u] = reinterpret_cast<const BlockQ8_K*>(rows + u * a_stride);
      acc[u] = V::ZeroI();
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      const I s = Scale(up, j, k);
#pragma GCC unroll 16
      for (int u = 0; u < U; ++u) {
        acc[u] = V::DotPairs(acc[u], V::Maddubs(w[j], V::Bcast4(ab[u]->qs + 32 * j + 4 * k)), s);
      }
    }
    if constexpr (kQ6) {
      const I sc_pairs = V::Load(&up.aux[k]);
      for (int u = 0; u < U; ++u) {
        int32_t pair;  // i16 {bsum_2k, bsum_2k+1}
        std::memcpy(&pair, ab[u]->bsums + 2 * k, sizeof(pair));
        const I corr = V::Madd16(sc_pairs, V::Set1I32(pair));
        acc[u] = V::SubI32(acc[u], V::template Slli32<5>(corr));
      }
    }
    for (int u = 0; u < U; ++u) facc[u][k] = V::Fmadd(dd[u], V::CvtI32(acc[u]), facc[u][k]);
  }

  // Direct sub-tiles of up to V::kDirectU tokens over tokens [T0, T).
  template <int T0, int T>
  static void DirectSubs(const I* w, const Unpacked& up, int k, const uint8_t* rows,
                         int64_t a_stride, const F* dd, F (*facc)[8]) {
    if constexpr (T0 < T) {
      constexpr int U = std::min(V::kDirectU, T - T0);
      DirectSub<U>(w, up, k, rows + T0 * a_stride, a_stride, dd + T0, facc + T0);
      DirectSubs<T0 + U, T>(w, up, k, rows, a_stride, dd, facc);
    }
  }

  // One super-block for T tokens, chunk column k after k: the 8 chunks
  // (j, k) are unpacked once into registers and serve every sub-tile.
  // Without Tile's copy of the tokens' quants, which cost ~8% of a 16-token
  // Q6_K tile with the weights in L2 (Zen 5); the broadcasts take the
  // sub-tile's U block addresses instead of constant offsets.
  template <int T>
  static void DirectPass(const Block* blk, int r0, const Unpacked& up, const uint8_t* rows,
                         int64_t a_stride, const F* dd, F (*facc)[8], const char* ahead) {
#pragma GCC unroll 1
    for (int k = 0; k < 8; ++k) {
      PrefetchEighth<false>(ahead, k);
      I w[8];
      for (int j = 0; j < 8; ++j) w[j] = Chunk(blk, r0, j, k);
      DirectSubs<0, T>(w, up, k, rows, a_stride, dd, facc);
    }
  }

  // T tokens (1..16) x rows [r0, r0 + kW) of one group, all super-blocks;
  // writes the first nrv (1..kW) of those rows.
  template <int T>
  static void Tile(const uint8_t* group, int r0, int nrv, const uint8_t* a, int64_t a_stride,
                   const uint8_t* aux, int64_t aux_stride, int64_t nb, float* y,
                   int64_t y_stride) {
    static_assert(T >= 1 && T <= 16);
    F facc[T][8];
    F faccm[T];
    F dd[T];
    for (int t = 0; t < T; ++t) {
      for (int k = 0; k < 8; ++k) facc[t][k] = V::ZeroF();
      faccm[t] = V::ZeroF();
    }
    // Tiles of 2+ tokens where V has direct sub-tiles: DirectPass.
    constexpr bool kDirect = V::kDirectU > 0 && T >= 2;
    // Otherwise the tokens' quants and bsum pairs of a super-block, copied
    // one block ahead (double-buffered): the broadcasts are 4-byte loads
    // from these 64-byte stores, which would stall if they had not retired
    // yet.
    alignas(64) int8_t act[2][kDirect ? 1 : T][kQK_K];
    alignas(64) int32_t bsp[2][kDirect ? 1 : T][8];
    auto copy_block = [&](int64_t b) {
      if constexpr (kDirect) return;
      for (int t = 0; t < T; ++t) {
        const BlockQ8_K* ab = reinterpret_cast<const BlockQ8_K*>(a + t * a_stride) + b;
        std::memcpy(act[b & 1][t], ab->qs, kQK_K);
        if constexpr (kQ6) std::memcpy(bsp[b & 1][t], ab->bsums, sizeof(bsp[0][t]));
      }
    };
    copy_block(0);
    const Block* blocks = reinterpret_cast<const Block*>(group);
    for (int64_t b = 0; b < nb; ++b) {
      const Block* blk = blocks + b;
      if (b + 1 < nb) copy_block(b + 1);
      Unpacked up;
      UnpackScales(blk, r0, &up);
      for (int t = 0; t < T; ++t) {
        const BlockQ8_K* ab = reinterpret_cast<const BlockQ8_K*>(a + t * a_stride) + b;
        const F da = V::Set1F(ab->d);
        dd[t] = V::Mul(up.dw, da);
        if constexpr (!kQ6) {
          const PackedActQ4K& x = reinterpret_cast<const PackedActQ4K*>(aux + t * aux_stride)[b];
          I m = V::Madd16(V::Load(&up.aux[0]), V::Set1I32(x.bsum_pairs[0]));
          for (int p = 1; p < 4; ++p) {
            m = V::AddI32(m, V::Madd16(V::Load(&up.aux[p]), V::Set1I32(x.bsum_pairs[p])));
          }
          faccm[t] = V::Fnmadd(V::Mul(up.dmw, da), V::CvtI32(m), faccm[t]);
        }
      }
      // kAhead super-blocks on (into the next group when this one ends: a
      // thread's groups are contiguous); the second half of an AVX2 group
      // finds its lines cached by the first.
      const char* ahead = r0 == 0 ? reinterpret_cast<const char*>(blk + kAhead) : nullptr;
      if constexpr (kDirect) {
        DirectPass<T>(blk, r0, up, a + b * static_cast<int64_t>(sizeof(BlockQ8_K)), a_stride, dd,
                      facc, ahead);
      } else {
        Passes<0, T, kL1 && T == 1>(blk, r0, up, &act[b & 1][0][0], &bsp[b & 1][0][0], dd, facc,
                                    ahead);
      }
    }
    for (int t = 0; t < T; ++t) {
      const F* f = facc[t];
      F s = V::AddF(V::AddF(V::AddF(f[0], f[4]), V::AddF(f[2], f[6])),
                    V::AddF(V::AddF(f[1], f[5]), V::AddF(f[3], f[7])));
      if constexpr (!kQ6) s = V::AddF(s, faccm[t]);
      V::StoreRows(y + t * y_stride, s, nrv);
    }
  }

  using TileFn = void (*)(const uint8_t*, int, int, const uint8_t*, int64_t, const uint8_t*,
                          int64_t, int64_t, float*, int64_t);
  template <int... T>
  static constexpr std::array<TileFn, sizeof...(T)> Table(std::integer_sequence<int, T...>) {
    return {&Tile<T + 1>...};
  }

  // PackedTileFn: tiles of 16 tokens, then one of the remaining 1..15; each
  // over the group's vectors of kW rows.
  static void Run(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride,
                  const uint8_t* aux, int64_t aux_stride, int nt, int64_t n, float* y,
                  int64_t y_stride) {
    static constexpr auto kTiles = Table(std::make_integer_sequence<int, 16>());
    const int64_t nb = n / kQK_K;
    for (int r0 = 0; r0 < nr; r0 += kW) {
      const int nrv = std::min(kW, nr - r0);
      for (int t = 0; t < nt; t += 16) {
        const int count = std::min(16, nt - t);
        kTiles[count - 1](group, r0, nrv, a + t * a_stride, a_stride, aux + t * aux_stride,
                          aux_stride, nb, y + t * y_stride + r0, y_stride);
      }
    }
  }
};

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_PACKED_K56_IMPL_H_
