#include "engine/model/phi3_model.h"

#include <algorithm>
#include <new>
#include <sys/mman.h>
#include <unistd.h>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/kernels/quantize.h"
#include "engine/model/attention.h"

namespace phi3 {

Phi3Model::~Phi3Model() = default;

absl::StatusOr<std::unique_ptr<Phi3Model>> Phi3Model::Open(const std::string& path,
                                                           const ModelOptions& options) {
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  if (!file.ok()) return file.status();
  absl::StatusOr<std::unique_ptr<Phi3Model>> model = Load(**file, options);
  if (!model.ok()) return model.status();
  (*model)->owned_file_ = *std::move(file);
  (*model)->ReleasePackedFilePages();
  return model;
}

absl::StatusOr<std::unique_ptr<Phi3Model>> Phi3Model::Load(const GgufFile& file,
                                                           const ModelOptions& options) {
  absl::StatusOr<Phi3Hparams> hparams = ReadPhi3Hparams(file);
  if (!hparams.ok()) return hparams.status();
  absl::StatusOr<Phi3Weights> weights = LoadPhi3Weights(file, *hparams);
  if (!weights.ok()) return weights.status();

  if (options.num_threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads = ", options.num_threads, ", expected >= 0"));
  }
  if (options.context_size < 0 || options.context_size > hparams->context_length) {
    return absl::InvalidArgumentError(
        absl::StrCat("context size ", options.context_size, " outside [1, ",
                     hparams->context_length, "] (the model's context_length)"));
  }
  auto model = std::unique_ptr<Phi3Model>(new Phi3Model());
  model->file_ = &file;
  model->hparams_ = *std::move(hparams);
  model->weights_ = *std::move(weights);
  model->context_size_ = options.context_size > 0
                             ? options.context_size
                             : std::min(kDefaultContextSize, model->hparams_.context_length);
  // llama.cpp: n_ctx_seq (n_ctx padded to 256) > n_ctx_orig_yarn -> long.
  model->use_long_factors_ =
      !model->weights_.rope_factors_long.empty() &&
      LlamaPaddedContext(model->context_size_) > model->hparams_.original_context_length;
  if (!model->use_long_factors_ && model->weights_.rope_factors_short.empty() &&
      !model->weights_.rope_factors_long.empty()) {
    return absl::InvalidArgumentError(
        "phi3 model: rope_factors_long.weight present without rope_factors_short.weight");
  }
  int threads = options.num_threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  model->pool_ = std::make_unique<ThreadPool>(threads);
  if (options.pack_weights && WeightPackingEnabled()) model->PackMatrices(options.progress);
  return model;
}

void Phi3Model::PackMatrices(const ProgressCallback& progress) {
  std::vector<WeightView*> views;
  auto add = [&views](WeightView* v) {
    const WeightMatrix m{v->type, v->rows, v->cols, v->data, WeightLayout::kRowMajor};
    if (v->data != nullptr && CanPackWeights(m)) views.push_back(v);
  };
  for (Phi3LayerWeights& L : weights_.layers) {
    for (WeightView* v : {&L.qkv, &L.q, &L.k, &L.v, &L.attn_output, &L.ffn_up, &L.ffn_down}) {
      add(v);
    }
  }
  // A tied head shares token_embd's bytes, which are read by row: its pages
  // must stay, but a packed copy still speeds up the head MatMul.
  add(&weights_.output);
  int64_t total_bytes = 0, done_bytes = 0;
  for (const WeightView* v : views) total_bytes += v->rows * v->row_bytes;
  if (progress && !views.empty()) progress("packing weights", 0, total_bytes);
  packed_.reserve(views.size());
  for (WeightView* v : views) {
    PackedWeights p = PackWeights({v->type, v->rows, v->cols, v->data, WeightLayout::kRowMajor},
                                  *pool_);
    done_bytes += v->rows * v->row_bytes;
    if (progress) progress("packing weights", done_bytes, total_bytes);
    if (p.matrix().data == nullptr) continue;  // out of memory: stay row-major
    packed_.push_back(std::move(p));
    v->packed = packed_.back().matrix();
  }
}

void Phi3Model::ReleasePackedFilePages() {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  auto release = [&](const WeightView& v) {
    if (v.packed.data == nullptr || v.data == weights_.token_embd.data) return;
    const uintptr_t first = reinterpret_cast<uintptr_t>(v.data);
    const uintptr_t begin = (first + page - 1) / page * page;
    const uintptr_t end = (first + v.rows * v.row_bytes) / page * page;
    // Advisory: a failure only costs memory.
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  };
  for (const Phi3LayerWeights& L : weights_.layers) {
    for (const WeightView* v : {&L.qkv, &L.q, &L.k, &L.v, &L.attn_output, &L.ffn_up, &L.ffn_down}) {
      release(*v);
    }
  }
  release(weights_.output);
}

int64_t Phi3Model::KvBytesPerToken(KvCacheType type) const {
  return 2 * static_cast<int64_t>(hparams_.num_layers) * KvTokenBytes(type, hparams_.kv_dim());
}

absl::Status Phi3Model::InitKvCache(int num_blocks, int block_size, KvCacheType type) {
  if (num_blocks < 1 || block_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("KV cache of ", num_blocks, " blocks of ",
                                                   block_size, " tokens: both must be >= 1"));
  }
  if (type == KvCacheType::kQ8_0 && hparams_.head_dim % kQK8_0 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "q8_0 KV cache needs a head dim that is a multiple of 32, this model has ",
        hparams_.head_dim));
  }
  Phi3ForwardState& s = state_;
  s.k_pool.clear();
  s.v_pool.clear();
  s.num_blocks = 0;
  const int64_t token_bytes = KvTokenBytes(type, hparams_.kv_dim());
  const int64_t layer_bytes = static_cast<int64_t>(num_blocks) * block_size * token_bytes;
  try {
    s.k_pool.resize(hparams_.num_layers);
    s.v_pool.resize(hparams_.num_layers);
    for (int il = 0; il < hparams_.num_layers; ++il) {
      s.k_pool[il].assign(layer_bytes, 0);
      s.v_pool[il].assign(layer_bytes, 0);
    }
  } catch (const std::bad_alloc&) {
    s.k_pool.clear();
    s.v_pool.clear();
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate a KV cache of ",
                     2 * layer_bytes * hparams_.num_layers, " bytes"));
  }
  s.kv_type = type;
  s.num_blocks = num_blocks;
  s.block_size = block_size;
  s.kv_token_bytes = token_bytes;
  return absl::OkStatus();
}

}  // namespace phi3
