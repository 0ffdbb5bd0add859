// The small per-row operations of the Phi-3 forward pass, written to follow
// ggml's CPU numerics (ggml/src/ggml-cpu/ops.cpp, vec.h) closely enough that
// f32 models agree with llama.cpp to ~1e-5 relative.
//
// Thread safety: pure functions, reentrant.
#ifndef PHI3_ENGINE_MODEL_OPS_H_
#define PHI3_ENGINE_MODEL_OPS_H_

#include <cstdint>
#include <span>

namespace phi3 {

// y[i] = (x[i] * s) * w[i], s = 1 / sqrt(mean(x^2) + eps), the mean summed in
// double as ggml_rms_norm does. y may alias x. REQUIRES: n > 0.
void RmsNormRow(const float* x, const float* w, int n, float eps, float* y);

// The rotation table of one position, ggml_rope_cache_init with ext_factor 0:
// for i in [0, rope_dims / 2): theta_i = freq_scale * pos * base^(-2i/rope_dims)
// / factors[i] (the power accumulated by repeated multiplication in float, as
// ggml does); cs[2i] = cos(theta_i) * mscale, cs[2i + 1] = sin(theta_i) * mscale.
// factors may be empty (all 1). cs: [rope_dims] floats.
struct RopeParams {
  int rope_dims = 0;
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;
  float mscale = 1.0f;  // ggml's attn_factor
  std::span<const float> factors;  // [rope_dims / 2] or empty
};
void RopeTable(const RopeParams& params, int32_t pos, float* cs);

// NEOX rotation of one head in place: for i < rope_dims / 2, the pair
// (x[i], x[i + rope_dims / 2]) is rotated by table entry i. Elements past
// rope_dims are unchanged.
void RopeNeoxHead(const float* cs, int rope_dims, float* x);

// y[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)), with
// ggml_vec_swiglu_f32's exp (bit for bit; see SiluMulRow in kernels/dot.h).
void SwiGluRow(const float* gate, const float* up, int n, float* y);

// x[i] = the f16 value nearest to x[i] (round to nearest even), as ggml does
// when an f32 operand meets an f16 one in a matmul.
void RoundToF16(float* x, int n);

// Converts n floats to IEEE f16 bits.
void F32ToF16Row(const float* x, uint16_t* y, int n);

}  // namespace phi3

#endif  // PHI3_ENGINE_MODEL_OPS_H_
