// Microbenchmark of RunAttentionLayer in batched decode: --seqs sequences of
// one new token each, contexts spread evenly over [--min_ctx, --max_ctx],
// phi3-mini shapes (32 heads x 96), over --layers separate KV pools used in
// turn (as a decode step walks the layers, so the KV comes from memory, not
// from cache). Prints the median time per call (one layer) and per step
// (--layers calls scaled to 32 layers), and a checksum of the outputs so two
// builds can be compared for identical results.
//
//   attention_bench --seqs 16 --min_ctx 9 --max_ctx 72 --threads 1
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/mman.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "engine/kernels/cpu_features.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/attention.h"
#include "engine/model/ops.h"

ABSL_FLAG(int, seqs, 16, "decoding sequences (one new token each)");
ABSL_FLAG(int, min_ctx, 9, "smallest context (positions attended, new token included)");
ABSL_FLAG(int, max_ctx, 72, "largest context");
ABSL_FLAG(int, layers, 32, "separate KV pools, used in turn");
ABSL_FLAG(int, threads, 1, "compute threads");
ABSL_FLAG(int, reps, 30, "timed passes over all layers");
ABSL_FLAG(int, heads, 32, "query heads (= KV heads)");
ABSL_FLAG(int, head_dim, 96, "head dimension");
ABSL_FLAG(int, block_size, 16, "KV block size");
ABSL_FLAG(std::string, kv, "f16", "KV type: f16 or q8_0");
ABSL_FLAG(std::string, simd, "", "force a SIMD level: scalar, avx2, avx512");
ABSL_FLAG(bool, huge_pages, false, "KV pools on transparent huge pages (madvise)");
ABSL_FLAG(int, pool_offset, 0,
          "bytes from a 2 MiB boundary to the pools' start (glibc's large vectors: 16)");

namespace phi3 {
namespace {

int Main() {
  const int seqs = absl::GetFlag(FLAGS_seqs), layers = absl::GetFlag(FLAGS_layers);
  const int heads = absl::GetFlag(FLAGS_heads), hd = absl::GetFlag(FLAGS_head_dim);
  const int bs = absl::GetFlag(FLAGS_block_size);
  const KvCacheType type =
      absl::GetFlag(FLAGS_kv) == "q8_0" ? KvCacheType::kQ8_0 : KvCacheType::kF16;
  const std::string simd = absl::GetFlag(FLAGS_simd);
  if (!simd.empty()) {
    const SimdLevel level = simd == "scalar" ? SimdLevel::kScalar
                            : simd == "avx2" ? SimdLevel::kAvx2
                                             : SimdLevel::kAvx512;
    if (!SetSimdLevel(level)) {
      std::fprintf(stderr, "SIMD level %s not supported\n", simd.c_str());
      return 1;
    }
  }
  const int q_dim = heads * hd, kv_dim = q_dim, qkv_dim = q_dim + 2 * kv_dim;
  const int64_t token_bytes = KvTokenBytes(type, kv_dim);
  std::vector<int> ctx(seqs);
  for (int s = 0; s < seqs; ++s) {
    const int lo = absl::GetFlag(FLAGS_min_ctx), hi = absl::GetFlag(FLAGS_max_ctx);
    ctx[s] = seqs == 1 ? hi : lo + static_cast<int>(int64_t{hi - lo} * s / (seqs - 1));
  }
  // Block tables: blocks of all sequences interleaved, as a pool hands them out.
  std::vector<std::vector<int32_t>> tables(seqs);
  int num_blocks = 0;
  for (int b = 0;; ++b) {
    bool any = false;
    for (int s = 0; s < seqs; ++s) {
      if (b * bs < ctx[s]) {
        tables[s].push_back(num_blocks++);
        any = true;
      }
    }
    if (!any) break;
  }
  // Cheap uniform values in [-1.7, 1.7) (unit variance): filling GBs of KV
  // with std::normal_distribution would dominate the run.
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto uniform = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (static_cast<float>(state >> 40) / 16777216.0f - 0.5f) * 3.4641f;
  };
  // Pools as 2 MiB-aligned allocations (optionally huge pages).
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t pool_bytes =
      (static_cast<size_t>(num_blocks) * bs * token_bytes + 64 + kHuge - 1) / kHuge * kHuge;
  const int pool_offset = absl::GetFlag(FLAGS_pool_offset);
  std::vector<uint8_t*> k_pools(layers), v_pools(layers);
  for (int l = 0; l < layers; ++l) {
    for (uint8_t** p : {&k_pools[l], &v_pools[l]}) {
      *p = static_cast<uint8_t*>(std::aligned_alloc(kHuge, pool_bytes));
      if (absl::GetFlag(FLAGS_huge_pages)) madvise(*p, pool_bytes, MADV_HUGEPAGE);
      std::memset(*p, 0, pool_bytes);
    }
  }
  std::vector<float> k(kv_dim), v(kv_dim);
  for (int l = 0; l < layers; ++l) {
    for (int s = 0; s < seqs; ++s) {
      for (int p = 0; p + 1 < ctx[s]; ++p) {
        for (float& x : k) x = uniform();
        for (float& x : v) x = uniform();
        const int64_t slot = int64_t{tables[s][p / bs]} * bs + p % bs;
        StoreKv(type, k.data(), v.data(), kv_dim, slot, token_bytes, k_pools[l] + pool_offset,
                v_pools[l] + pool_offset);
      }
    }
  }
  std::vector<std::vector<int32_t>> tokens(seqs, std::vector<int32_t>(1, 1));
  std::vector<SequenceSlice> slices(seqs);
  std::vector<int32_t> row_seq(seqs), row_pos(seqs);
  std::vector<uint8_t> row_batched(seqs, 0);
  for (int s = 0; s < seqs; ++s) {
    slices[s].tokens = tokens[s];
    slices[s].start_pos = ctx[s] - 1;
    slices[s].block_table = tables[s];
    row_seq[s] = s;
    row_pos[s] = ctx[s] - 1;
  }
  std::vector<float> rope(static_cast<size_t>(seqs) * hd);
  RopeParams rp;
  rp.rope_dims = hd;
  for (int s = 0; s < seqs; ++s) RopeTable(rp, row_pos[s], &rope[s * hd]);
  std::vector<float> qkv_in(static_cast<size_t>(seqs) * qkv_dim);
  for (float& x : qkv_in) x = 2.0f * uniform();
  std::vector<float> qkv(qkv_in.size()), out(static_cast<size_t>(seqs) * q_dim);

  ThreadPool pool(absl::GetFlag(FLAGS_threads));
  AttentionLayerArgs a;
  a.sequences = slices;
  a.num_rows = seqs;
  a.row_seq = row_seq.data();
  a.row_pos = row_pos.data();
  a.row_batched = row_batched.data();
  a.rope = rope.data();
  a.rope_dims = hd;
  a.q_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  a.qkv = qkv.data();
  a.out = out.data();
  a.num_heads = heads;
  a.num_kv_heads = heads;
  a.head_dim = hd;
  a.kv_type = type;
  a.block_size = bs;
  a.kv_token_bytes = token_bytes;
  double checksum = 0;
  std::vector<double> call_us;
  const int reps = absl::GetFlag(FLAGS_reps);
  for (int r = -2; r < reps; ++r) {  // 2 warm-up passes
    double pass = 0;
    for (int l = 0; l < layers; ++l) {
      std::copy(qkv_in.begin(), qkv_in.end(), qkv.begin());  // RunAttentionLayer rotates in place
      a.k_pool = k_pools[l] + pool_offset;
      a.v_pool = v_pools[l] + pool_offset;
      const auto t0 = std::chrono::steady_clock::now();
      RunAttentionLayer(a, pool);
      pass += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                  .count();
      if (r == -1) {
        for (size_t i = 0; i < out.size(); ++i) checksum += out[i] * static_cast<double>(i % 97);
      }
    }
    if (r >= 0) call_us.push_back(pass / layers);
  }
  std::sort(call_us.begin(), call_us.end());
  const double med = call_us[call_us.size() / 2];
  int64_t positions = 0;
  for (int c : ctx) positions += c;
  std::printf(
      "attention_bench simd=%s kv=%s seqs=%d ctx=[%d,%d] threads=%d layers=%d: per call "
      "median %.1f us (min %.1f), per (row, head) %.0f ns, per position-head %.2f ns, "
      "per 32-layer step %.2f ms; checksum %.9g\n",
      std::string(SimdLevelName(ActiveSimdLevel())).c_str(), absl::GetFlag(FLAGS_kv).c_str(),
      seqs, ctx.front(), ctx.back(), pool.num_threads(), layers, med, call_us.front(),
      med * 1e3 / (seqs * heads), med * 1e3 / (positions * heads), med * 32 / 1e3, checksum);
  for (int l = 0; l < layers; ++l) {
    std::free(k_pools[l]);
    std::free(v_pools[l]);
  }
  return 0;
}

}  // namespace
}  // namespace phi3

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return phi3::Main();
}
