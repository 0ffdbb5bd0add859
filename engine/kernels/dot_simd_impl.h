// Body of the x86 SIMD kernels, included by dot_avx2.cc and dot_avx512.cc,
// which compile it with their own target flags. Everything is in an
// anonymous namespace so the two copies never merge at link time (that
// would let AVX-512 code run on an AVX2-only CPU).
//
// Design: a kernel for type X is a set of Ops (unpack a weight block,
// prepare an activation block, combine them into an accumulator, finish). One
// template, KernelRT<Ops, R, T>, computes an R-rows x T-tokens tile; dot()
// is KernelRT<Ops, 1, 1>. Each (row, token) accumulator sees exactly the
// same instruction sequence whatever R and T are, so tile results are
// bit-identical to dot() (the batch-invariance MatMul promises). Weight
// blocks are unpacked once per tile and reused for all T tokens.
//
// Integer dots use u8 x s8 multiply-adds: maddubs+madd on AVX2, vpdpbusd
// with AVX512-VNNI (PHI3_VNNI); both give the exact same int32 sums.
#ifndef PHI3_ENGINE_KERNELS_DOT_SIMD_IMPL_H_
#define PHI3_ENGINE_KERNELS_DOT_SIMD_IMPL_H_

#include "engine/kernels/simd_activation.h"
#include "engine/kernels/simd_bf16_ops.h"
#include "engine/kernels/simd_block_ops.h"
#include "engine/kernels/simd_common.h"
#include "engine/kernels/simd_encode.h"
#include "engine/kernels/simd_f16_ops.h"
#include "engine/kernels/simd_lane_ops.h"

namespace phi3::internal {
namespace {

KernelTable MakeSimdTable() {
  KernelTable t;
  t.f32 = MakeKernels<F32Ops>();
  t.f16 = TypeKernels{&F16VecDot, &F16VecTile};
  t.f16_batch = TypeKernels{&F16BatchDot, &F16BatchTile};
  SetBf16Kernels(&t);
  t.q8_0 = MakeKernels<Q8_0Ops>();
  t.q4_0 = MakeLaneKernels<LaneQ4_0>();
  t.q4_1 = MakeKernels<Q4_1Ops>();
  t.q4_k = MakeLaneKernels<LaneK45<false>>();
  t.q4_k_pairs = MakeLaneKernels<LaneK45<false, true>>();
  t.q5_k = MakeKernels<K45Ops<true>>();
  t.q6_k = MakeKernels<Q6_KOps>();
  t.to_f16 = EncodeF16;
  t.to_bf16 = EncodeBF16;
  t.to_q8_0 = EncodeQ8_0;
  t.to_q8_1 = EncodeQ8_1;
  t.to_q8_k = EncodeQ8_K;
  t.silu_mul = SiluMulSimd;
  t.exp_row = ExpRowSimd;
  return t;
}

}  // namespace
}  // namespace phi3::internal

#endif  // PHI3_ENGINE_KERNELS_DOT_SIMD_IMPL_H_
