// AMX-INT8 kernels for the packed Q4_0 and Q4_K layouts (Q4_K in both roundings):
// one TDPBSSD computes, for 16 tokens x the 16 rows of a group, the exact
// int32 sum over one 32-element block (Q4_0) or sub-block (Q4_K); an
// AVX-512 epilogue then applies the scales in the row-major kernels' float
// order (packed_avx512.cc), so every (row, token) gets the float the
// AVX-512 level writes (int32 sums are exact in any order). The other packed
// types round per 4-product lane (PackedQ8_0Block), which a K = 32 tile
// product cannot give: they stay on the AVX-512 tables.
//
// Tile shapes (one palette-1 configuration for everything here): A = the
// tokens' 32 activation bytes of a block (count rows x 32 bytes, read in
// place from the Q8_0 / Q8_K rows), B = one block of the group's weights in
// VNNI order (8 rows x 64 bytes: row k holds elements 4k .. 4k+3 of each of
// the 16 rows, as signed bytes), C = count rows x 16 int32: row t is token
// t's block sums for the 16 rows, one zmm of the epilogue. B tiles come from
// a per-call unpack of the group (nibbles to bytes) into a thread-local
// scratch, amortized over every token of the call.
//
// The kernels are templates over the tile unit: HardwareTiles runs the AMX
// instructions; EmulatedTiles computes the same products in C++ so that
// tests pin the layout and epilogue on CPUs without AMX.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/kernels/packed_internal.h"
#include "engine/kernels/quantize.h"

// GCC 12 warns inside its own AVX-512 conversion intrinsics (_mm512_undefined).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace phi3::internal {
namespace {

constexpr int kTileTokens = 16;
constexpr int kBlockBytes = 32;                 // K of one tile product
constexpr int kBTileBytes = 8 * 64;             // one block of 16 rows, VNNI order
// Fewer tokens than this go to the AVX-512 tiles: the per-call unpack of
// the group would cost more than the few tile products it feeds.
constexpr int kMinAmxTokens = 4;

// Palette-1 tile configuration (Intel SDM, LDTILECFG): 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

// Two slots s = 0, 1 (two products in flight): tiles 3s (A), 3s + 1 (B) and
// 3s + 2 (C). `rows` tokens (1..16) per A and C tile.
TileConfig ShapesConfig(int rows) {
  TileConfig c;
  for (int s = 0; s < 2; ++s) {
    c.rows[3 * s] = static_cast<uint8_t>(rows);
    c.colsb[3 * s] = kBlockBytes;
    c.rows[3 * s + 1] = kBTileBytes / 64;
    c.colsb[3 * s + 1] = 64;
    c.rows[3 * s + 2] = static_cast<uint8_t>(rows);
    c.colsb[3 * s + 2] = kPackRows * 4;
  }
  return c;
}

// The AMX unit. Multiply<S>: c[t][r] = sum over k < 32 of a[t * a_stride +
// k] * b[(k / 4) * 64 + 4 r + k % 4] for the configured rows t (signed
// bytes, exact int32). GCC's tile intrinsics name registers by stringizing
// a literal, hence the branch per slot; their tile loads do not tell the
// compiler they read memory, so a compiler barrier keeps the stores that
// filled b before them.
struct HardwareTiles {
  // LDTILECFG reads all 64 bytes, but GCC's intrinsic declares an 8-byte
  // operand: the config lives in thread storage and a barrier keeps its
  // stores before the instruction.
  static void Configure(int rows) {
    thread_local TileConfig config;
    config = ShapesConfig(rows);
    asm volatile("" ::: "memory");
    _tile_loadconfig(&config);
  }
  template <int S>
  static void Multiply(const int8_t* a, int64_t a_stride, const int8_t* b, int32_t* c) {
    asm volatile("" ::: "memory");
    if constexpr (S == 0) {
      _tile_zero(2);
      _tile_loadd(0, a, a_stride);
      _tile_loadd(1, b, 64);
      _tile_dpbssd(2, 0, 1);
      _tile_stored(2, c, kPackRows * 4);
    } else {
      _tile_zero(5);
      _tile_loadd(3, a, a_stride);
      _tile_loadd(4, b, 64);
      _tile_dpbssd(5, 3, 4);
      _tile_stored(5, c, kPackRows * 4);
    }
  }
  static void Release() { _tile_release(); }
};

// The same products in C++, for tests on any CPU with the kAvx512 set. Not
// a fast path. It runs the configuration the hardware gets (ShapesConfig)
// by the SDM's definitions of TILELOADD, TDPBSSD and TILESTORED: every
// configured row of A and B is read (so a tile configured for more tokens
// than its caller has reads past their activations, as the unit would),
// and shapes TDPBSSD rejects (#UD) abort.
struct EmulatedTiles {
  static TileConfig& Config() {
    thread_local TileConfig config;
    return config;
  }
  static void Configure(int rows) { Config() = ShapesConfig(rows); }
  template <int S>
  static void Multiply(const int8_t* a, int64_t a_stride, const int8_t* b, int32_t* c) {
    const TileConfig& cfg = Config();
    const int a_rows = cfg.rows[3 * S], a_cols = cfg.colsb[3 * S];
    const int b_rows = cfg.rows[3 * S + 1], b_cols = cfg.colsb[3 * S + 1];
    const int c_rows = cfg.rows[3 * S + 2], c_cols = cfg.colsb[3 * S + 2];
    if (cfg.palette != 1 || a_rows != c_rows || a_cols != 4 * b_rows || b_cols != c_cols ||
        a_rows > 16 || b_rows > 16 || a_cols > 64 || b_cols > 64) {
      std::fprintf(stderr, "EmulatedTiles: tile shapes TDPBSSD rejects\n");
      std::abort();
    }
    int8_t ta[16][64], tb[16][64];  // TILELOADD: every configured row
    for (int m = 0; m < a_rows; ++m) std::memcpy(ta[m], a + m * a_stride, a_cols);
    for (int k = 0; k < b_rows; ++k) std::memcpy(tb[k], b + k * 64, b_cols);
    for (int m = 0; m < c_rows; ++m) {
      for (int n = 0; n < c_cols / 4; ++n) {
        int32_t sum = 0;  // TILEZERO, then TDPBSSD
        for (int k = 0; k < b_rows; ++k) {
          for (int i = 0; i < 4; ++i) sum += int32_t{ta[m][4 * k + i]} * int32_t{tb[k][4 * n + i]};
        }
        c[m * kPackRows + n] = sum;  // TILESTORED, stride kPackRows * 4 bytes
      }
    }
  }
  static void Release() {}
};

// Per-thread scratch: the unpacked B tiles and f32 scales of the group a
// call works on (sized for the widest matrix seen, kept between calls).
struct GroupScratch {
  std::vector<int8_t> weights;
  std::vector<float> scales;
  int8_t* Weights(size_t bytes) {
    if (weights.size() < bytes) weights.resize(bytes);
    return weights.data();
  }
  float* Scales(size_t count) {
    if (scales.size() < count) scales.resize(count);
    return scales.data();
  }
};

GroupScratch& Scratch() {
  thread_local GroupScratch scratch;
  return scratch;
}

// The token loop every kernel here shares: tiles of 16 tokens, the last
// one with its own configuration (rows = count); a call or remainder with
// fewer than kMinAmxTokens tokens goes to `avx512`. unpack() fills the
// thread's scratch once, before the first tile; tile(t0, count) runs
// tokens [t0, t0 + count) on the configured tiles.
template <class Tiles, class Unpack, class Tile>
void RunTokenTiles(PackedTileFn avx512, const uint8_t* group, int nr, const uint8_t* a,
                   int64_t a_stride, const uint8_t* aux, int64_t aux_stride, int nt, int64_t n,
                   float* y, int64_t y_stride, Unpack unpack, Tile tile) {
  if (nt < kMinAmxTokens) {
    avx512(group, nr, a, a_stride, aux, aux_stride, nt, n, y, y_stride);
    return;
  }
  unpack();
  int configured = 0;
  for (int t0 = 0; t0 < nt; t0 += kTileTokens) {
    const int count = std::min(kTileTokens, nt - t0);
    if (count < kMinAmxTokens) {
      avx512(group, nr, a + t0 * a_stride, a_stride, aux + t0 * aux_stride, aux_stride, count, n,
             y + t0 * y_stride, y_stride);
      break;
    }
    if (count != configured) Tiles::Configure(configured = count);
    tile(t0, count);
  }
  Tiles::Release();
}

// Q4_0: block b's B tile at w + 512 b: rows 0..3 = low nibbles of chunks
// 0..3 (elements 4c .. 4c+3), rows 4..7 = high nibbles (16 + 4c ..), each
// minus 8 (the format's offset, so the tile sums are the signed dot); its
// 16 row scales at d + 16 b.
void UnpackQ4_0(const PackedQ4_0Block* blocks, int64_t nb, int8_t* w, float* d) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  const __m512i eight = _mm512_set1_epi8(8);
  for (int64_t b = 0; b < nb; ++b) {
    const PackedQ4_0Block& blk = blocks[b];
    _mm512_storeu_ps(d + kPackRows * b, _mm512_cvtph_ps(_mm256_loadu_si256(
                                            reinterpret_cast<const __m256i*>(blk.d))));
    int8_t* out = w + kBTileBytes * b;
    for (int c = 0; c < 4; ++c) {
      const __m512i v = _mm512_loadu_si512(blk.qs[c]);
      _mm512_storeu_si512(out + 64 * c, _mm512_sub_epi8(_mm512_and_si512(v, low), eight));
      _mm512_storeu_si512(out + 64 * (4 + c),
                          _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low), eight));
    }
  }
}

// Q4_0, `count` tokens (the configured rows) x one group: per block, acc =
// fma(float(S_b), d_w * d_a, acc) as Q4_0Tile (packed_avx512.cc).
template <class Tiles>
void Q4_0Tokens(const int8_t* w, const float* dw, int64_t nb, const uint8_t* a, int64_t a_stride,
                const uint8_t* aux, int64_t aux_stride, int count, int nr, float* y,
                int64_t y_stride) {
  alignas(64) int32_t c[2][kTileTokens][kPackRows];
  __m512 acc[kTileTokens];
  for (int t = 0; t < kTileTokens; ++t) acc[t] = _mm512_setzero_ps();
  const int8_t* qa = reinterpret_cast<const BlockQ8_0*>(a)->qs;
  const auto epilogue = [&](int64_t b, const int32_t (*sums)[kPackRows]) {
    const __m512 d = _mm512_loadu_ps(dw + kPackRows * b);
#pragma GCC unroll 16
    for (int t = 0; t < kTileTokens; ++t) {
      if (t == count) break;
      const float da = reinterpret_cast<const PackedActQ4_0*>(aux + t * aux_stride)[b].d;
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sums[t])),
                               _mm512_mul_ps(d, _mm512_set1_ps(da)), acc[t]);
    }
  };
  constexpr int64_t kAStep = sizeof(BlockQ8_0);
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    Tiles::template Multiply<0>(qa + kAStep * b, a_stride, w + kBTileBytes * b, &c[0][0][0]);
    Tiles::template Multiply<1>(qa + kAStep * (b + 1), a_stride, w + kBTileBytes * (b + 1),
                                &c[1][0][0]);
    epilogue(b, c[0]);
    epilogue(b + 1, c[1]);
  }
  if (b < nb) {
    Tiles::template Multiply<0>(qa + kAStep * b, a_stride, w + kBTileBytes * b, &c[0][0][0]);
    epilogue(b, c[0]);
  }
  const __mmask16 rows = static_cast<__mmask16>((1u << nr) - 1);  // nr in [1, 16]
  for (int t = 0; t < count; ++t) _mm512_mask_storeu_ps(y + t * y_stride, rows, acc[t]);
}

template <class Tiles>
void Q4_0Amx(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
             int64_t aux_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  const int64_t nb = n / kQK4_0;
  GroupScratch& s = Scratch();
  int8_t* w = nullptr;
  float* dw = nullptr;
  RunTokenTiles<Tiles>(
      Avx512PackedKernels().q4_0, group, nr, a, a_stride, aux, aux_stride, nt, n, y, y_stride,
      [&] {
        w = s.Weights(static_cast<size_t>(nb * kBTileBytes));
        dw = s.Scales(static_cast<size_t>(nb * kPackRows));
        UnpackQ4_0(reinterpret_cast<const PackedQ4_0Block*>(group), nb, w, dw);
      },
      [&](int t0, int count) {
        Q4_0Tokens<Tiles>(w, dw, nb, a + t0 * a_stride, a_stride, aux + t0 * aux_stride,
                          aux_stride, count, nr, y + t0 * y_stride, y_stride);
      });
}

// Q4_K: super-block b, sub-block pair p (elements 64p .. 64p+63): the B
// tile of sub-block 2p + h (h = 0: low nibbles, 1: high) at w + 512 (8 b +
// 2 p + h), row k = elements 4k .. 4k+3 of the sub-block (bytes 0..15, no
// offset: the mins are a separate term). Side data per super-block: the 16
// rows' d, dmin and the 8 sub-block scales as f32.
struct Q4KSide {
  float d[kPackRows];
  float dmin[kPackRows];
  float scale[8][kPackRows];
};
constexpr int kQ4KSideFloats = sizeof(Q4KSide) / sizeof(float);

void UnpackQ4K(const PackedQ4KBlock* blocks, int64_t nb, int8_t* w, Q4KSide* side) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const PackedQ4KBlock& blk = blocks[b];
    Q4KSide& sd = side[b];
    _mm512_storeu_ps(sd.d, _mm512_cvtph_ps(_mm256_loadu_si256(
                               reinterpret_cast<const __m256i*>(blk.d))));
    _mm512_storeu_ps(sd.dmin, _mm512_cvtph_ps(_mm256_loadu_si256(
                                  reinterpret_cast<const __m256i*>(blk.dmin))));
    for (int j = 0; j < 8; ++j) {
      _mm512_storeu_ps(sd.scale[j], _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(
                                        reinterpret_cast<const __m128i*>(blk.scales[j])))));
    }
    int8_t* out = w + 8 * kBTileBytes * b;
    for (int p = 0; p < 4; ++p) {
      for (int k = 0; k < 8; ++k) {
        const __m512i v = _mm512_loadu_si512(blk.qs[8 * p + k]);
        _mm512_storeu_si512(out + kBTileBytes * (2 * p) + 64 * k, _mm512_and_si512(v, low));
        _mm512_storeu_si512(out + kBTileBytes * (2 * p + 1) + 64 * k,
                            _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
      }
    }
  }
}

// Q4_K, `count` tokens x one group, in either rounding of Q4KTileN<T,
// kPairs> (packed_avx512.cc). Per sub-block pair, s = S_lo * sc_lo + S_hi *
// sc_hi and m = the pair's mins x bsums (integers). kPairs (prompts): acc =
// fma(float(s), d_w * d_a, acc), accm = fma(float(m), dmin_w * d_a, accm)
// per pair; else (decode) s and m are summed over the super-block's four
// pairs first, then one such fma each. y = acc - accm. s is formed in f32
// as fma(float(S_lo), sc_lo, float(S_hi) * sc_hi): |S| <= 32 x 15 x 128 and
// sc <= 63, so every step is an integer below 2^23, exact in f32 (and
// converts back to int32 exactly for the decode sums).
template <class Tiles, bool kPairs>
void Q4KTokens(const int8_t* w, const Q4KSide* side, const PackedQ4KBlock* blocks, int64_t nb,
               const uint8_t* a, int64_t a_stride, const uint8_t* aux, int64_t aux_stride,
               int count, int nr, float* y, int64_t y_stride) {
  alignas(64) int32_t c[2][kTileTokens][kPackRows];
  // Prompts: acc in registers, accm in L1 (32 accumulators would fill the
  // register file). Decode: the integer sums in registers, both in L1.
  alignas(64) float acc_mem[kTileTokens][kPackRows];
  alignas(64) float accm[kTileTokens][kPackRows];
  __m512 acc[kTileTokens];
  for (int t = 0; t < kTileTokens; ++t) {
    acc[t] = _mm512_setzero_ps();
    _mm512_store_ps(acc_mem[t], acc[t]);
    _mm512_store_ps(accm[t], acc[t]);
  }
  const int8_t* qa = reinterpret_cast<const BlockQ8_K*>(a)->qs;
  constexpr int64_t kAStep = sizeof(BlockQ8_K);
  for (int64_t b = 0; b < nb; ++b) {
    const Q4KSide& sd = side[b];
    const __m512 dw = _mm512_loadu_ps(sd.d);
    const __m512 dmw = _mm512_loadu_ps(sd.dmin);
    __m512i sumi[kTileTokens], summ[kTileTokens];
    if constexpr (!kPairs) {
      for (int t = 0; t < kTileTokens; ++t) sumi[t] = summ[t] = _mm512_setzero_si512();
    }
    for (int p = 0; p < 4; ++p) {
      const int8_t* ap = qa + kAStep * b + 64 * p;
      const int8_t* wp = w + kBTileBytes * (8 * b + 2 * p);
      Tiles::template Multiply<0>(ap, a_stride, wp, &c[0][0][0]);
      Tiles::template Multiply<1>(ap + 32, a_stride, wp + kBTileBytes, &c[1][0][0]);
      const __m512 sc_lo = _mm512_loadu_ps(sd.scale[2 * p]);
      const __m512 sc_hi = _mm512_loadu_ps(sd.scale[2 * p + 1]);
      const __m512i mins = _mm512_cvtepu8_epi16(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[b].mins[p])));
#pragma GCC unroll 16
      for (int t = 0; t < kTileTokens; ++t) {
        if (t == count) break;
        const PackedActQ4K& x = reinterpret_cast<const PackedActQ4K*>(aux + t * aux_stride)[b];
        const __m512 s = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(_mm512_load_si512(c[0][t])), sc_lo,
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[1][t])), sc_hi));
        const __m512i m = _mm512_madd_epi16(mins, _mm512_set1_epi32(x.bsum_pairs[p]));
        if constexpr (kPairs) {
          const __m512 da = _mm512_set1_ps(x.d);
          acc[t] = _mm512_fmadd_ps(s, _mm512_mul_ps(dw, da), acc[t]);
          _mm512_store_ps(accm[t], _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmw, da),
                                                   _mm512_load_ps(accm[t])));
        } else {
          sumi[t] = _mm512_add_epi32(sumi[t], _mm512_cvtps_epi32(s));
          summ[t] = _mm512_add_epi32(summ[t], m);
        }
      }
    }
    if constexpr (!kPairs) {
#pragma GCC unroll 16
      for (int t = 0; t < kTileTokens; ++t) {
        if (t == count) break;
        const __m512 da =
            _mm512_set1_ps(reinterpret_cast<const PackedActQ4K*>(aux + t * aux_stride)[b].d);
        _mm512_store_ps(acc_mem[t], _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[t]),
                                                    _mm512_mul_ps(dw, da),
                                                    _mm512_load_ps(acc_mem[t])));
        _mm512_store_ps(accm[t], _mm512_fmadd_ps(_mm512_cvtepi32_ps(summ[t]),
                                                 _mm512_mul_ps(dmw, da), _mm512_load_ps(accm[t])));
      }
    }
  }
  const __mmask16 rows = static_cast<__mmask16>((1u << nr) - 1);  // nr in [1, 16]
  for (int t = 0; t < count; ++t) {
    const __m512 sum = kPairs ? acc[t] : _mm512_load_ps(acc_mem[t]);
    _mm512_mask_storeu_ps(y + t * y_stride, rows, _mm512_sub_ps(sum, _mm512_load_ps(accm[t])));
  }
}

template <class Tiles, bool kPairs>
void Q4KAmx(const uint8_t* group, int nr, const uint8_t* a, int64_t a_stride, const uint8_t* aux,
            int64_t aux_stride, int nt, int64_t n, float* y, int64_t y_stride) {
  const int64_t nb = n / kQK_K;
  const PackedQ4KBlock* blocks = reinterpret_cast<const PackedQ4KBlock*>(group);
  GroupScratch& s = Scratch();
  int8_t* w = nullptr;
  Q4KSide* side = nullptr;
  RunTokenTiles<Tiles>(
      kPairs ? Avx512PackedKernels().q4_k_pairs : Avx512PackedKernels().q4_k, group, nr, a,
      a_stride, aux, aux_stride, nt, n, y, y_stride,
      [&] {
        w = s.Weights(static_cast<size_t>(nb * 8 * kBTileBytes));
        side = reinterpret_cast<Q4KSide*>(s.Scales(static_cast<size_t>(nb * kQ4KSideFloats)));
        UnpackQ4K(blocks, nb, w, side);
      },
      [&](int t0, int count) {
        Q4KTokens<Tiles, kPairs>(w, side, blocks, nb, a + t0 * a_stride, a_stride,
                                 aux + t0 * aux_stride, aux_stride, count, nr,
                                 y + t0 * y_stride, y_stride);
      });
}

template <class Tiles>
PackedKernels AmxTable() {
  PackedKernels k = Avx512PackedKernels();
  k.q4_0 = &Q4_0Amx<Tiles>;
  k.q4_0_batch = nullptr;  // q4_0 takes every batch
  k.q4_k = &Q4KAmx<Tiles, false>;
  k.q4_k_pairs = &Q4KAmx<Tiles, true>;
  return k;
}

// Random operands through both slots at `rows` tokens; the A rows 40
// bytes apart (a stride other than the row width, as in the kernels).
template <class Tiles>
void SelfCheckProducts(int rows, int32_t (*c)[kTileTokens * kPackRows]) {
  constexpr int kAStride = 40;
  alignas(64) int8_t a[2][kTileTokens * kAStride];
  alignas(64) int8_t b[2][kBTileBytes];
  uint32_t state = 12345;
  const auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return static_cast<int8_t>(state >> 24);
  };
  for (int s = 0; s < 2; ++s) {
    for (int8_t& v : a[s]) v = next();
    for (int8_t& v : b[s]) v = next();
  }
  Tiles::Configure(rows);
  Tiles::template Multiply<0>(a[0], kAStride, b[0], c[0]);
  Tiles::template Multiply<1>(a[1], kAStride, b[1], c[1]);
  Tiles::Release();
}

}  // namespace

int64_t AmxKernelInL1(TensorType type, int64_t iterations) {
  // One group of 16 rows x 8 Q4_0 blocks or 1 Q4_K super-block (4 KiB of
  // B tiles), 16 tokens: 65536 MACs per call, everything in L1.
  const bool q4k = type == TensorType::kQ4_K;
  const int64_t nb = q4k ? 1 : 8;
  const int64_t n = q4k ? kQK_K : nb * kQK4_0;
  const int64_t a_stride = q4k ? sizeof(BlockQ8_K) : nb * sizeof(BlockQ8_0);
  const int64_t aux_stride = q4k ? sizeof(PackedActQ4K) : nb * sizeof(PackedActQ4_0);
  std::vector<uint8_t> group(q4k ? sizeof(PackedQ4KBlock) : nb * sizeof(PackedQ4_0Block), 0x5A);
  std::vector<uint8_t> a(kTileTokens * a_stride, 3), aux(kTileTokens * aux_stride, 0);
  std::vector<int8_t> w(nb * (q4k ? 8 : 1) * kBTileBytes);
  std::vector<float> side(nb * (q4k ? kQ4KSideFloats : kPackRows));
  std::vector<float> y(kTileTokens * kPackRows);
  if (q4k) {
    UnpackQ4K(reinterpret_cast<const PackedQ4KBlock*>(group.data()), nb, w.data(),
              reinterpret_cast<Q4KSide*>(side.data()));
  } else {
    UnpackQ4_0(reinterpret_cast<const PackedQ4_0Block*>(group.data()), nb, w.data(), side.data());
  }
  HardwareTiles::Configure(kTileTokens);
  for (int64_t i = 0; i < iterations; ++i) {
    if (q4k) {
      Q4KTokens<HardwareTiles, false>(w.data(), reinterpret_cast<const Q4KSide*>(side.data()),
                                      reinterpret_cast<const PackedQ4KBlock*>(group.data()), nb,
                                      a.data(), a_stride, aux.data(), aux_stride, kTileTokens,
                                      kPackRows, y.data(), kPackRows);
    } else {
      Q4_0Tokens<HardwareTiles>(w.data(), side.data(), nb, a.data(), a_stride, aux.data(),
                                aux_stride, kTileTokens, kPackRows, y.data(), kPackRows);
    }
  }
  HardwareTiles::Release();
  return iterations * kTileTokens * kPackRows * n;
}

bool AmxTilesSelfCheck() {
  for (int rows : {kTileTokens, 5}) {
    alignas(64) int32_t hw[2][kTileTokens * kPackRows] = {};
    alignas(64) int32_t sw[2][kTileTokens * kPackRows] = {};
    SelfCheckProducts<HardwareTiles>(rows, hw);
    SelfCheckProducts<EmulatedTiles>(rows, sw);
    if (std::memcmp(hw, sw, sizeof(hw)) != 0) return false;
  }
  return true;
}

const PackedKernels& AmxPackedKernels() {
  static const PackedKernels k = AmxTable<HardwareTiles>();
  return k;
}

const PackedKernels& EmulatedAmxPackedKernels() {
  static const PackedKernels k = AmxTable<EmulatedTiles>();
  return k;
}

}  // namespace phi3::internal
