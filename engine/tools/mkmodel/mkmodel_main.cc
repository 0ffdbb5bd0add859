// phi3-mkmodel: writes a Phi-3 GGUF with random weights and the real Phi-3
// vocabulary. See phi3_model_writer.h; usage: phi3-mkmodel --help.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/flags/flag.h"
#include "cli/flags.h"
#include "cli/progress.h"
#include "engine/tools/mkmodel/phi3_model_writer.h"

ABSL_FLAG(std::string, preset, "tiny",
          "tiny | phi3-mini | phi3-mini-128k: the real models' shapes, or a tiny one for tests.");
ABSL_FLAG(std::string, type, "f32",
          "f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q4_k | q5_k | q6_k | q4_k_m. Single types are "
          "pure (every 2-D weight has that type); q4_k_m is llama-quantize's mix.");
ABSL_FLAG(uint64_t, seed, 1, "The weights are a deterministic function of the seed.");
ABSL_FLAG(std::string, out, "", "The .gguf file to write (required).");
ABSL_FLAG(int64_t, layers, 0, "Overrides n_layer (0: the preset's).");
ABSL_FLAG(int64_t, embd, 0, "Overrides n_embd (0: the preset's).");
ABSL_FLAG(int64_t, ff, 0, "Overrides n_ff (0: the preset's).");
ABSL_FLAG(int64_t, heads, 0, "Overrides n_head = n_head_kv (0: the preset's).");
ABSL_FLAG(int64_t, ctx, 0, "Overrides context_length (0: the preset's).");
ABSL_FLAG(std::string, added_token_type, "control",
          "Token type of Phi-3's added tokens: control (current converter) or user_defined "
          "(older GGUFs).");
ABSL_FLAG(bool, split_qkv, false, "Writes attn_q/attn_k/attn_v instead of the fused attn_qkv.");
ABSL_FLAG(float, logit_std, 4.0f, "Standard deviation of the output head's logits for a unit-RMS "
          "hidden state.");
ABSL_FLAG(float, output_row_spread, 0.5f,
          "Output rows are scaled by exp(spread * N(0,1)); larger separates top logits more.");
ABSL_FLAG(std::string, name, "",
          "general.name (empty: Phi-3-mini-... (phi3serve random weights, PRESET)).");
ABSL_FLAG(int, threads, 0, "Generator threads (0: the hardware's, at most 8).");

namespace {

const phi3::cli::ProgramInfo& MkmodelProgram() {
  static const phi3::cli::ProgramInfo* info = new phi3::cli::ProgramInfo{
      "phi3-mkmodel",
      "writes a Phi-3 GGUF file with random weights and the real Phi-3 vocabulary (test and "
      "benchmark models; they generate no meaningful text).",
      "phi3-mkmodel --out FILE.gguf [--preset NAME] [--type TYPE] [options]",
      {{"Output", {"out=FILE.gguf", "name=TEXT", "threads=N"}},
       {"Shape", {"preset=NAME", "layers=N", "embd=N", "ff=N", "heads=N", "ctx=TOKENS",
                  "split_qkv"}},
       {"Weights", {"type=TYPE", "seed=N", "logit_std=X", "output_row_spread=X"}},
       {"Vocabulary", {"added_token_type=KIND"}}},
      "  phi3-mkmodel --out tiny.gguf\n"
      "  phi3-mkmodel --preset phi3-mini --type q4_k_m --seed 7 --out phi3-mini-random.gguf\n",
      "Exit status 0: written; 2: bad arguments or the file could not be written.\n"};
  return *info;
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "phi3-mkmodel: %s\n", msg.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest = phi3::cli::ParseCommandLine(argc, argv, MkmodelProgram());
  if (rest.size() > 1) return Fail(std::string("unexpected argument ") + rest[1]);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) return Fail("--out FILE is required");

  const std::string preset = absl::GetFlag(FLAGS_preset);
  auto dims = phi3::Phi3PresetDims(preset);
  if (!dims.ok()) return Fail(std::string(dims.status().message()));
  auto format = phi3::ParseWeightFormat(absl::GetFlag(FLAGS_type));
  if (!format.ok()) return Fail(std::string(format.status().message()));

  phi3::Phi3ModelOptions o;
  o.dims = *dims;
  o.format = *format;
  o.seed = absl::GetFlag(FLAGS_seed);
  o.split_qkv = absl::GetFlag(FLAGS_split_qkv);
  o.logit_std = absl::GetFlag(FLAGS_logit_std);
  o.num_threads = absl::GetFlag(FLAGS_threads);
  o.output_row_spread = absl::GetFlag(FLAGS_output_row_spread);
  if (absl::GetFlag(FLAGS_layers) > 0) o.dims.n_layer = absl::GetFlag(FLAGS_layers);
  if (absl::GetFlag(FLAGS_embd) > 0) o.dims.n_embd = absl::GetFlag(FLAGS_embd);
  if (absl::GetFlag(FLAGS_ff) > 0) o.dims.n_ff = absl::GetFlag(FLAGS_ff);
  if (absl::GetFlag(FLAGS_heads) > 0) o.dims.n_head = o.dims.n_head_kv = absl::GetFlag(FLAGS_heads);
  if (absl::GetFlag(FLAGS_ctx) > 0) o.dims.n_ctx = absl::GetFlag(FLAGS_ctx);
  if (!o.dims.long_rope) o.dims.n_ctx_orig = o.dims.n_ctx;
  const std::string kind = absl::GetFlag(FLAGS_added_token_type);
  if (kind == "control") {
    o.added_token_kind = phi3::AddedTokenKind::kControl;
  } else if (kind == "user_defined") {
    o.added_token_kind = phi3::AddedTokenKind::kUserDefined;
  } else {
    return Fail("--added-token-type must be control or user_defined, got " + kind);
  }
  o.name = absl::GetFlag(FLAGS_name);
  if (o.name.empty()) {
    o.name = std::string(o.dims.long_rope ? "Phi-3-mini-128k-instruct" : "Phi-3-mini-4k-instruct") +
             " (phi3serve random weights, " + preset + ")";
  }

  const auto start = std::chrono::steady_clock::now();
  absl::Status written;
  {
    phi3::cli::Progress progress("phi3-mkmodel");
    o.progress = progress.Callback();
    written = phi3::WritePhi3Model(o, out);
  }
  if (!written.ok()) return Fail(std::string(written.ToString()));
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "phi3-mkmodel: wrote %s (%s, %s, %.1f MiB) in %.1f s\n", out.c_str(),
               preset.c_str(), phi3::WeightFormatName(o.format).c_str(),
               std::filesystem::file_size(out) / 1048576.0, secs);
  return 0;
}
