// Phi3Model::Forward: one step over a batch of sequence slices.
//
// All T new tokens of the batch go through every weight matmul together
// (MatMul is batch-invariant, so a token's numbers do not depend on its
// neighbours, only on its rounding class); attention runs per (token, head)
// over the token's own sequence, after every new token's K/V has been
// written to its slot.
//
// Rows are ordered by rounding class (forward.h "Rounding"), not by
// sequence: [0, G) llama.cpp prompt tokens in full groups of 4 (Q4_K gemm),
// [G, B) the other prompt tokens, [B, T) single-token evaluations, so each
// MatMul gets its rounding as two prefix counts. token_seq/token_pos name a
// row's sequence and position. The last layer after attention runs on the
// logit rows only, as llama.cpp's inp_out_ids does (decode rounding).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/kernels/matmul.h"
#include "engine/kernels/quantize.h"
#include "engine/model/attention.h"
#include "engine/model/ops.h"
#include "engine/model/phi3_model.h"

namespace phi3 {
namespace {

template <typename T>
void EnsureSize(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Rounding class of a token (see forward.h): 0 = prompt gemm group,
// 1 = prompt tail, 2 = single-token llama_decode ubatch (decode rounding;
// also the last token of a prompt of k * kLlamaUbatchTokens + 1 tokens).
int RoundingClass(const SequenceSlice& q, int32_t pos) {
  const int32_t begin = q.eval_end == 0 ? q.start_pos : q.eval_begin;
  const int32_t end =
      q.eval_end == 0 ? q.start_pos + static_cast<int32_t>(q.tokens.size()) : q.eval_end;
  const int32_t n = end - begin;
  if (n % kLlamaUbatchTokens == 1 && pos == end - 1) return 2;
  return pos < end - n % 4 ? 0 : 1;
}

absl::Status ValidateBatch(const ForwardBatch& batch, const Phi3ForwardState& s, int vocab,
                           int context, size_t logits_size, int64_t* num_tokens,
                           int64_t* num_logits) {
  if (s.num_blocks == 0) {
    return absl::FailedPreconditionError("Forward called before InitKvCache");
  }
  *num_tokens = 0;
  *num_logits = 0;
  for (size_t i = 0; i < batch.sequences.size(); ++i) {
    const SequenceSlice& q = batch.sequences[i];
    const int64_t n = static_cast<int64_t>(q.tokens.size());
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrCat("sequence ", i, ": no new tokens"));
    }
    if (q.start_pos < 0 || q.start_pos + n > context) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequence ", i, ": positions [", q.start_pos, ", ", q.start_pos + n,
          ") outside the context [0, ", context, ")"));
    }
    for (int32_t t : q.tokens) {
      if (t < 0 || t >= vocab) {
        return absl::InvalidArgumentError(absl::StrCat("sequence ", i, ": token id ", t,
                                                       " outside [0, ", vocab, ")"));
      }
    }
    if (q.eval_end != 0 && (q.eval_begin < 0 || q.eval_begin > q.start_pos ||
                            q.eval_end < q.start_pos + n)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequence ", i, ": evaluation [", q.eval_begin, ", ", q.eval_end,
          ") does not contain the new positions [", q.start_pos, ", ", q.start_pos + n, ")"));
    }
    const int64_t blocks_needed = (q.start_pos + n + s.block_size - 1) / s.block_size;
    if (static_cast<int64_t>(q.block_table.size()) < blocks_needed) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", i, ": block table has ", q.block_table.size(),
                       " blocks, positions up to ", q.start_pos + n, " need ", blocks_needed));
    }
    for (int64_t b = 0; b < blocks_needed; ++b) {
      if (q.block_table[b] < 0 || q.block_table[b] >= s.num_blocks) {
        return absl::InvalidArgumentError(
            absl::StrCat("sequence ", i, ": block_table[", b, "] = ", q.block_table[b],
                         " outside the pool [0, ", s.num_blocks, ")"));
      }
    }
    *num_tokens += n;
    if (q.want_logits) ++*num_logits;
  }
  if (static_cast<int64_t>(logits_size) < *num_logits * vocab) {
    return absl::InvalidArgumentError(absl::StrCat("logits span holds ", logits_size,
                                                   " floats, need ", *num_logits * vocab));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Phi3Model::Forward(const ForwardBatch& batch, std::span<float> logits) {
  Phi3ForwardState& s = state_;
  const Phi3Hparams& h = hparams_;
  const Phi3Weights& w = weights_;
  int64_t T = 0, R = 0;
  if (absl::Status st = ValidateBatch(batch, s, h.vocab_size, context_size_, logits.size(), &T, &R);
      !st.ok()) {
    return st;
  }
  if (T == 0) return absl::OkStatus();
  ThreadPool& pool = *pool_;

  const int n_embd = h.embedding_length;
  const int n_ff = h.feed_forward_length;
  const int q_dim = h.q_dim();
  const int kv_dim = h.kv_dim();
  const int qkv_dim = q_dim + 2 * kv_dim;
  const int head_dim = h.head_dim;
  const int rope_dims = h.rope_dims;

  EnsureSize(s.token_seq, T);
  EnsureSize(s.token_pos, T);
  EnsureSize(s.rope, T * rope_dims);
  EnsureSize(s.x, T * n_embd);
  EnsureSize(s.xn, T * n_embd);
  EnsureSize(s.qkv, T * qkv_dim);
  EnsureSize(s.attn, T * q_dim);
  EnsureSize(s.proj, T * n_embd);
  EnsureSize(s.up, T * 2 * n_ff);
  EnsureSize(s.act, T * n_ff);

  // Token rows grouped by rounding class; out_rows[r] = the row of the r-th
  // logit row's token (last new token of a want_logits slice, batch order).
  int64_t G = 0, B = 0;
  std::vector<int64_t> out_rows;
  out_rows.reserve(R);
  {
    int64_t count[3] = {0, 0, 0};
    for (const SequenceSlice& q : batch.sequences) {
      for (size_t j = 0; j < q.tokens.size(); ++j) {
        ++count[RoundingClass(q, q.start_pos + static_cast<int32_t>(j))];
      }
    }
    G = count[0];
    B = count[0] + count[1];
    int64_t next[3] = {0, G, B};
    for (size_t i = 0; i < batch.sequences.size(); ++i) {
      const SequenceSlice& q = batch.sequences[i];
      for (size_t j = 0; j < q.tokens.size(); ++j) {
        const int32_t pos = q.start_pos + static_cast<int32_t>(j);
        const int64_t t = next[RoundingClass(q, pos)]++;
        s.token_seq[t] = static_cast<int32_t>(i);
        s.token_pos[t] = pos;
        if (q.want_logits && j + 1 == q.tokens.size()) out_rows.push_back(t);
      }
    }
  }
  const MatMulRounding prompt = {.batch_tokens = B, .q4k_gemm_tokens = G};
  // Embeddings (ggml_get_rows dequantizes to f32) and rotation tables.
  RopeParams rope;
  rope.rope_dims = rope_dims;
  rope.freq_base = h.rope_freq_base;
  rope.freq_scale = h.rope_freq_scale;
  rope.mscale = h.rope_attn_factor;
  rope.factors = use_long_factors_ ? std::span<const float>(w.rope_factors_long)
                                   : std::span<const float>(w.rope_factors_short);
  pool.ParallelFor(T, [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) {
      const SequenceSlice& q = batch.sequences[s.token_seq[t]];
      const int32_t token = q.tokens[s.token_pos[t] - q.start_pos];
      DequantizeRow(w.token_embd.type, w.token_embd.row(token), &s.x[t * n_embd], n_embd);
      RopeTable(rope, s.token_pos[t], &s.rope[t * rope_dims]);
    }
  });

  std::vector<uint8_t> row_batched(T, 0);
  std::fill_n(row_batched.begin(), B, 1);
  AttentionLayerArgs attn_args;
  attn_args.sequences = batch.sequences;
  attn_args.num_rows = T;
  attn_args.row_seq = s.token_seq.data();
  attn_args.row_pos = s.token_pos.data();
  attn_args.row_batched = row_batched.data();
  attn_args.rope = s.rope.data();
  attn_args.rope_dims = rope_dims;
  attn_args.q_scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  attn_args.out = s.attn.data();
  attn_args.num_heads = h.num_heads;
  attn_args.num_kv_heads = h.num_kv_heads;
  attn_args.head_dim = head_dim;
  attn_args.kv_type = s.kv_type;
  attn_args.block_size = s.block_size;
  attn_args.kv_token_bytes = s.kv_token_bytes;

  for (int il = 0; il < h.num_layers; ++il) {
    if (batch.abandoned && batch.abandoned()) {
      return absl::CancelledError(absl::StrCat("step abandoned before layer ", il));
    }
    const Phi3LayerWeights& L = w.layers[il];
    // ---- attention block
    pool.ParallelFor(T, [&](int64_t begin, int64_t end, int) {
      for (int64_t t = begin; t < end; ++t) {
        RmsNormRow(&s.x[t * n_embd], L.attn_norm.data(), n_embd, h.rms_norm_eps,
                   &s.xn[t * n_embd]);
      }
    });
    if (L.fused_qkv()) {
      MatMul(L.qkv.matrix(), s.xn.data(), T, s.qkv.data(), qkv_dim, pool, prompt);
    } else {
      MatMul(L.q.matrix(), s.xn.data(), T, s.qkv.data(), qkv_dim, pool, prompt);
      MatMul(L.k.matrix(), s.xn.data(), T, s.qkv.data() + q_dim, qkv_dim, pool, prompt);
      MatMul(L.v.matrix(), s.xn.data(), T, s.qkv.data() + q_dim + kv_dim, qkv_dim, pool, prompt);
    }
    // RoPE, Q scaling and f16 rounding, K/V store, attention; rows [0, B)
    // with llama.cpp's prompt-path KQ/KQV rounding.
    attn_args.qkv = s.qkv.data();
    attn_args.k_pool = s.k_pool[il].data();
    attn_args.v_pool = s.v_pool[il].data();
    RunAttentionLayer(attn_args, pool);
    MatMul(L.attn_output.matrix(), s.attn.data(), T, s.proj.data(), n_embd, pool, prompt);
    // The last layer continues on the logit rows only (llama.cpp's
    // inp_out_ids), compacted to rows [0, R) of x; 1-row products there get
    // decode rounding. Nothing after this point feeds the KV cache.
    const bool last = il == h.num_layers - 1;
    if (last) {
      if (R == 0) return absl::OkStatus();
      EnsureSize(s.head_in, R * n_embd);
      for (int64_t r = 0; r < R; ++r) {
        const float* x = &s.x[out_rows[r] * n_embd];
        const float* p = &s.proj[out_rows[r] * n_embd];
        float* y = &s.head_in[r * n_embd];
        for (int i = 0; i < n_embd; ++i) y[i] = p[i] + x[i];
      }
      std::copy_n(s.head_in.begin(), R * n_embd, s.x.begin());
    }
    const int64_t rows = last ? R : T;  // rows of the feed-forward block
    const MatMulRounding ffn_rounding = last ? MatMulRounding{} : prompt;
    pool.ParallelFor(rows, [&](int64_t begin, int64_t end, int) {
      for (int64_t t = begin; t < end; ++t) {
        float* x = &s.x[t * n_embd];
        if (!last) {
          const float* p = &s.proj[t * n_embd];
          for (int i = 0; i < n_embd; ++i) x[i] = p[i] + x[i];
        }
        RmsNormRow(x, L.ffn_norm.data(), n_embd, h.rms_norm_eps, &s.xn[t * n_embd]);
      }
    });
    // ---- feed-forward block
    MatMul(L.ffn_up.matrix(), s.xn.data(), rows, s.up.data(), 2 * n_ff, pool, ffn_rounding);
    pool.ParallelFor(rows, [&](int64_t begin, int64_t end, int) {
      for (int64_t t = begin; t < end; ++t) {
        const float* g = &s.up[t * 2 * n_ff];
        SwiGluRow(g, g + n_ff, n_ff, &s.act[t * n_ff]);
      }
    });
    MatMul(L.ffn_down.matrix(), s.act.data(), rows, s.proj.data(), n_embd, pool, ffn_rounding);
    pool.ParallelFor(rows, [&](int64_t begin, int64_t end, int) {
      for (int64_t t = begin; t < end; ++t) {
        float* x = &s.x[t * n_embd];
        const float* p = &s.proj[t * n_embd];
        for (int i = 0; i < n_embd; ++i) x[i] = x[i] + p[i];
      }
    });
  }

  // Output head on the R compacted logit rows, in batch order.
  for (int64_t r = 0; r < R; ++r) {
    RmsNormRow(&s.x[r * n_embd], w.output_norm.data(), n_embd, h.rms_norm_eps,
               &s.head_in[r * n_embd]);
  }
  MatMul(w.output.matrix(), s.head_in.data(), R, logits.data(), pool);
  return absl::OkStatus();
}

}  // namespace phi3
