// phi3::Engine for GGUF Phi-3 files: loads the file, the model and the
// tokenizer, sizes the paged KV pool, and runs an EngineCore loop
// (engine/sched/engine_core.h) over them.
#include "engine/engine.h"

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/common/tensor_type.h"
#include "engine/gguf/gguf_file.h"
#include "engine/model/phi3_model.h"
#include "engine/sched/engine_core.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/detokenizer.h"
#include "engine/tokenizer/tokenizer.h"

namespace phi3 {

namespace {

// Default KV pool when EngineOptions::kv_cache_bytes is 0: room for
// max_running_sequences full contexts, capped at this, but never less than
// one full context.
constexpr int64_t kDefaultKvCapBytes = int64_t{2} << 30;

class DetokenizerStream : public TextStream {
 public:
  explicit DetokenizerStream(const Tokenizer& tokenizer)
      : detok_(tokenizer, DetokenizerOptions{.remove_special = false,
                                             .unparse_special = false,
                                             .continuation = true,
                                             .replace_invalid_utf8 = true}) {}
  std::string Push(int32_t token) override { return detok_.Push(token); }
  std::string Flush() override { return detok_.Finish(); }

 private:
  StreamingDetokenizer detok_;
};

class TokenizerText : public TokenText {
 public:
  explicit TokenizerText(const Tokenizer* tokenizer) : tokenizer_(tokenizer) {}
  bool IsEndOfGeneration(int32_t token) const override {
    return tokenizer_->IsEndOfGeneration(token);
  }
  std::unique_ptr<TextStream> NewStream() const override {
    return std::make_unique<DetokenizerStream>(*tokenizer_);
  }

 private:
  const Tokenizer* tokenizer_;
};

// SHA-256 of a file, computed on a thread of its own so that a multi-GB
// file does not delay startup (OpenSSL uses the SHA extensions when the CPU
// has them: about 1.5-2 GB/s).
class FileHasher {
 public:
  // Reports phase "hashing" to `progress` (may be empty) every 64 MiB.
  FileHasher(std::string path, int64_t file_bytes, ProgressCallback progress)
      : path_(std::move(path)), file_bytes_(file_bytes), progress_(std::move(progress)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~FileHasher() {
    stop_ = true;
    Join();
  }
  // Blocks until the hash is known. "" if the file could not be read.
  const std::string& Get() {
    Join();
    return hex_;
  }

 private:
  void Run() {
    std::FILE* f = std::fopen(path_.c_str(), "rb");
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok = f != nullptr && ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    std::vector<unsigned char> buf(1 << 20);
    constexpr int64_t kReportBytes = int64_t{64} << 20;
    int64_t done = 0;
    if (ok && progress_) progress_("hashing", 0, file_bytes_);
    while (ok && !stop_) {
      const size_t n = std::fread(buf.data(), 1, buf.size(), f);
      if (n > 0) ok = EVP_DigestUpdate(ctx, buf.data(), n);
      done += n;
      if (ok && progress_ && (done % kReportBytes < static_cast<int64_t>(n) || n < buf.size())) {
        progress_("hashing", std::min(done, file_bytes_), file_bytes_);
      }
      if (n < buf.size()) {
        ok = ok && !std::ferror(f);
        break;
      }
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (ok && !stop_ && EVP_DigestFinal_ex(ctx, digest, &len)) {
      static constexpr char kHex[] = "0123456789abcdef";
      for (unsigned int i = 0; i < len; ++i) {
        hex_.push_back(kHex[digest[i] >> 4]);
        hex_.push_back(kHex[digest[i] & 15]);
      }
    }
    if (ctx != nullptr) EVP_MD_CTX_free(ctx);
    if (f != nullptr) std::fclose(f);
  }
  void Join() {
    std::call_once(joined_, [this] { thread_.join(); });
  }

  std::string path_;
  const int64_t file_bytes_;
  const ProgressCallback progress_;
  std::string hex_;
  std::atomic<bool> stop_{false};
  std::once_flag joined_;
  std::thread thread_;
};

class Phi3Engine : public Engine {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options);
  ~Phi3Engine() override {
    core_.reset();  // delivers every OnFinish before the model goes away
  }

  absl::StatusOr<RequestId> Submit(GenerateRequest request,
                                   std::shared_ptr<TokenSink> sink) override {
    return core_->Submit(std::move(request), std::move(sink));
  }
  void Cancel(RequestId id) override { core_->Cancel(id); }
  EngineStats Stats() const override { return core_->Stats(); }
  const ModelInfo& Info() const override {
    std::call_once(sha_once_, [this] { info_.file_sha256 = hasher_->Get(); });
    return info_;
  }
  std::vector<int32_t> Tokenize(std::string_view text, bool add_special,
                                bool parse_special) const override {
    return tokenizer_->Encode(text, add_special, parse_special);
  }
  std::string Detokenize(const std::vector<int32_t>& tokens) const override {
    return tokenizer_->Decode(tokens);
  }
  absl::StatusOr<std::vector<int32_t>> ApplyChatTemplate(
      const std::vector<ChatMessage>& messages) const override {
    std::vector<ChatTurn> turns;
    turns.reserve(messages.size());
    for (const ChatMessage& m : messages) {
      ChatTurn t;
      t.role = m.role == ChatMessage::Role::kSystem ? ChatRole::kSystem
               : m.role == ChatMessage::Role::kUser ? ChatRole::kUser
                                                    : ChatRole::kAssistant;
      t.content = m.content;
      turns.push_back(std::move(t));
    }
    return EncodePhi3Chat(*tokenizer_, turns);
  }

 private:
  Phi3Engine() = default;

  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Phi3Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<TokenizerText> text_;
  std::unique_ptr<FileHasher> hasher_;
  mutable std::once_flag sha_once_;
  mutable ModelInfo info_;
  std::unique_ptr<EngineCore> core_;  // last: destroyed first
};

std::string DominantWeightType(const GgufFile& file) {
  std::map<std::string, uint64_t> bytes;
  for (const GgufTensor& t : file.tensors()) {
    if (t.dims.size() >= 2) bytes[TensorTypeName(t.type)] += t.num_bytes;
  }
  std::string best;
  uint64_t best_bytes = 0;
  for (const auto& [name, n] : bytes) {
    if (n > best_bytes) best = name, best_bytes = n;
  }
  return best;
}

std::vector<std::pair<std::string, int>> TensorTypeCounts(const GgufFile& file) {
  std::map<std::string, int> counts;
  for (const GgufTensor& t : file.tensors()) ++counts[TensorTypeName(t.type)];
  std::vector<std::pair<std::string, int>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return sorted;
}

absl::StatusOr<std::unique_ptr<Engine>> Phi3Engine::Create(const EngineOptions& options) {
  if (options.num_threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads = ", options.num_threads, ": expected >= 0 (0 = all cores)"));
  }
  if (options.context_size < 0) {
    return absl::InvalidArgumentError(absl::StrCat("context_size = ", options.context_size,
                                                   ": expected >= 0 (0 = min(4096, model's))"));
  }
  if (options.kv_cache_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat("kv_cache_bytes = ", options.kv_cache_bytes,
                                                   ": expected >= 0 (0 = automatic)"));
  }
  // Fail fast on engine options before loading a multi-GB file.
  if (absl::Status s = ValidateSchedulingOptions(options); !s.ok()) return s;
  std::unique_ptr<Phi3Engine> engine(new Phi3Engine());
  const ProgressCallback& progress = options.load_progress;
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(options.model_path);
  if (!file.ok()) return file.status();
  engine->file_ = *std::move(file);
  const int64_t mapped_bytes = static_cast<int64_t>(engine->file_->file_size());
  if (progress) progress("mapping and checking", mapped_bytes, mapped_bytes);  // one step
  engine->hasher_ = std::make_unique<FileHasher>(options.model_path, mapped_bytes, progress);

  ModelOptions model_options;
  model_options.num_threads = options.num_threads;
  model_options.context_size = options.context_size;
  model_options.progress = progress;
  absl::StatusOr<std::unique_ptr<Phi3Model>> model = Phi3Model::Load(*engine->file_, model_options);
  if (!model.ok()) return model.status();
  engine->model_ = *std::move(model);
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromGguf(*engine->file_);
  if (!tokenizer.ok()) return tokenizer.status();
  engine->tokenizer_ = std::make_unique<Tokenizer>(*std::move(tokenizer));
  engine->text_ = std::make_unique<TokenizerText>(engine->tokenizer_.get());

  Phi3Model& m = *engine->model_;
  const int context = m.context_length();
  const int block_size = options.kv_block_size;
  const int64_t token_bytes = m.KvBytesPerToken(options.kv_cache_type);
  const int64_t block_bytes = token_bytes * block_size;
  const int64_t min_blocks = (context + block_size - 1) / block_size;
  int64_t num_blocks;
  if (options.kv_cache_bytes > 0) {
    num_blocks = options.kv_cache_bytes / block_bytes;
    if (num_blocks < min_blocks) {
      return absl::InvalidArgumentError(absl::StrCat(
          "kv_cache_bytes = ", options.kv_cache_bytes, " holds ", num_blocks, " blocks of ",
          block_size, " tokens (", block_bytes, " bytes each); one full context of ", context,
          " tokens needs ", min_blocks, " blocks = ", min_blocks * block_bytes, " bytes"));
    }
  } else {
    const int64_t wanted = min_blocks * std::max(1, options.max_running_sequences);
    num_blocks = std::max(min_blocks, std::min(wanted, kDefaultKvCapBytes / block_bytes));
  }
  if (num_blocks > (int64_t{1} << 30)) num_blocks = int64_t{1} << 30;

  EngineCoreOptions core;
  static_cast<SchedulingOptions&>(core) = options;  // the user's knobs, as given
  core.context_size = context;
  core.vocab_size = m.vocab_size();
  core.num_kv_blocks = static_cast<int>(num_blocks);
  if (absl::Status s = ValidateEngineCoreOptions(core); !s.ok()) return s;
  if (absl::Status s = m.InitKvCache(core.num_kv_blocks, block_size, options.kv_cache_type);
      !s.ok()) {
    return s;
  }

  ModelInfo& info = engine->info_;
  const Phi3Hparams& hp = m.hparams();
  info.name = hp.name;
  info.architecture = "phi3";
  info.file_path = options.model_path;
  info.quantization = DominantWeightType(*engine->file_);
  info.tensor_types = TensorTypeCounts(*engine->file_);
  for (const GgufTensor& t : engine->file_->tensors()) info.parameter_count += t.num_elements;
  info.context_length = hp.context_length;
  info.context_size = context;
  info.vocab_size = m.vocab_size();
  info.num_layers = hp.num_layers;
  info.embedding_size = hp.embedding_length;

  engine->core_ =
      std::make_unique<EngineCore>(core, engine->model_.get(), engine->text_.get(), SystemClock());
  engine->core_->Start();
  return engine;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options) {
  return Phi3Engine::Create(options);
}

}  // namespace phi3
