// OursRunner over Phi3Model::Forward (no scheduler): the model's own speed.
#include <algorithm>
#include <chrono>
#include <numeric>
#include <span>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/kernels/read_bandwidth.h"
#include "engine/model/phi3_model.h"
#include "engine/tools/bench/bench_report.h"
#include "engine/tools/bench/bench_result.h"
#include "engine/tools/bench/bench_stats.h"
#include "engine/tools/bench/ours_runner.h"
#include "engine/tools/bench/roofline.h"

namespace phi3::bench {
namespace {

constexpr int kBlockSize = 16;
constexpr int kPrefillChunk = 512;  // llama.cpp's default n_batch

double NowMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int32_t Argmax(std::span<const float> row) {
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

class ModelRunner : public OursRunner {
 public:
  ModelRunner(const OursOptions& options, std::unique_ptr<Phi3Model> model)
      : options_(options), model_(std::move(model)) {}

  std::string name() const override { return "model"; }

  // Faults the weights in and sizes the scratch, as bench.mjs's warm-up does.
  absl::Status Warmup() { return Decode(8, 4).status(); }

  absl::StatusOr<Measurement> Run(const std::string& figure) override {
    salt_ = 1000 * run_count_++;
    if (figure == "tg128") return Decode(8, 128);
    if (figure == "tg128@2048") return Decode(2048, 128);
    if (figure == "pp512") return Prefill(512);
    if (const int n = ParallelStreams(figure); n > 0) return Parallel(n);
    if (figure == "mem:f16") return Memory(KvCacheType::kF16);
    if (figure == "mem:q8_0") return Memory(KvCacheType::kQ8_0);
    if (figure == kDecodeVsReadFigure) return DecodeVsRead();
    return absl::UnimplementedError(absl::StrCat("model runner: no figure \"", figure, "\""));
  }

 private:
  // Gives `num_seqs` sequences `tokens_per_seq` positions each; sequence i
  // owns blocks [i * per_seq, (i + 1) * per_seq).
  absl::Status EnsureKv(int num_seqs, int tokens_per_seq, KvCacheType type) {
    const int per_seq = (tokens_per_seq + kBlockSize - 1) / kBlockSize;
    const int blocks = num_seqs * per_seq;
    if (blocks != kv_blocks_ || type != kv_type_) {
      if (absl::Status s = model_->InitKvCache(blocks, kBlockSize, type); !s.ok()) return s;
      kv_blocks_ = blocks;
      kv_type_ = type;
    }
    tables_.assign(num_seqs, {});
    for (int i = 0; i < num_seqs; ++i) {
      tables_[i].resize(per_seq);
      std::iota(tables_[i].begin(), tables_[i].end(), i * per_seq);
    }
    return absl::OkStatus();
  }

  // Prefills tokens [0, end) of sequence `seq` in chunks; logits for the
  // last chunk's last token land in logits_.
  absl::Status PrefillSeq(int seq, std::span<const int32_t> tokens, int end) {
    for (int begin = 0; begin < end; begin += kPrefillChunk) {
      const int n = std::min(kPrefillChunk, end - begin);
      ForwardBatch batch;
      batch.sequences.push_back(SequenceSlice{tokens.subspan(begin, n), begin, tables_[seq],
                                              begin + n == end});
      if (absl::Status s = model_->Forward(batch, Logits(1)); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  std::span<float> Logits(int rows) {
    logits_.resize(static_cast<size_t>(rows) * model_->vocab_size());
    return logits_;
  }

  // Prompt of `prompt_len` tokens; all but the last prefilled untimed, then
  // `count` timed single-token steps (the first feeds the last prompt token),
  // as bench.mjs does.
  absl::StatusOr<Measurement> Decode(int prompt_len, int count) {
    if (absl::Status s = EnsureKv(1, prompt_len + count + 8, KvCacheType::kF16); !s.ok()) return s;
    std::vector<int32_t> tokens = PromptTokens(prompt_len, 1 + salt_);
    if (absl::Status s = PrefillSeq(0, tokens, prompt_len - 1); !s.ok()) return s;
    const double t0 = NowMs();
    for (int i = 0; i < count; ++i) {
      const int pos = prompt_len - 1 + i;
      ForwardBatch batch;
      batch.sequences.push_back(
          SequenceSlice{std::span<const int32_t>(&tokens[pos], 1), pos, tables_[0], true});
      if (absl::Status s = model_->Forward(batch, Logits(1)); !s.ok()) return s;
      tokens.push_back(Argmax(logits_));
    }
    const double ms = NowMs() - t0;
    Measurement m;
    m.value = count / (ms / 1000);
    m.extras["ms"] = ms;
    return m;
  }

  absl::StatusOr<Measurement> Prefill(int count) {
    if (absl::Status s = EnsureKv(1, 2048 + 128 + 8, KvCacheType::kF16); !s.ok()) return s;
    const std::vector<int32_t> tokens = PromptTokens(count, 2 + salt_);
    const double t0 = NowMs();
    if (absl::Status s = PrefillSeq(0, tokens, count); !s.ok()) return s;
    const double ms = NowMs() - t0;
    Measurement m;
    m.value = count / (ms / 1000);
    m.extras["ms"] = ms;
    return m;
  }

  // n streams decoded together: one Forward over n one-token slices per step.
  absl::StatusOr<Measurement> Parallel(int n) {
    const int g = options_.parallel_tokens;
    if (absl::Status s = EnsureKv(n, 8 + g + 8, KvCacheType::kF16); !s.ok()) return s;
    std::vector<std::vector<int32_t>> tokens(n);
    for (int i = 0; i < n; ++i) {
      tokens[i] = PromptTokens(8, 100 + i + salt_);
      tokens[i].reserve(8 + g + 1);
      if (absl::Status s = PrefillSeq(i, tokens[i], 7); !s.ok()) return s;
    }
    std::vector<double> gaps;
    const double t0 = NowMs();
    double last = t0;
    for (int step = 0; step < g; ++step) {
      ForwardBatch batch;
      const int pos = 7 + step;
      for (int i = 0; i < n; ++i) {
        batch.sequences.push_back(
            SequenceSlice{std::span<const int32_t>(&tokens[i][pos], 1), pos, tables_[i], true});
      }
      if (absl::Status s = model_->Forward(batch, Logits(n)); !s.ok()) return s;
      const int vocab = model_->vocab_size();
      for (int i = 0; i < n; ++i) {
        tokens[i].push_back(Argmax(std::span<const float>(logits_).subspan(
            static_cast<size_t>(i) * vocab, vocab)));
      }
      const double now = NowMs();
      // Every stream receives its token at the end of the step.
      if (step > 0) gaps.insert(gaps.end(), n, now - last);
      last = now;
    }
    const double ms = last - t0;
    Measurement m;
    m.value = static_cast<double>(n) * g / (ms / 1000);
    m.extras["ms"] = ms;
    m.extras["itl_p50_ms"] = Percentile(gaps, 50);
    m.extras["itl_p99_ms"] = Percentile(gaps, 99);
    return m;
  }

  // tg128_vs_read: tg128's decode steps (its prompt, positions and threads)
  // alternating with read passes over a kReadPassBytes buffer, so each step
  // is set against the bandwidth of the same seconds (ReadShare). Value: the
  // median per-pair share; extras: the median rates and the pair count.
  absl::StatusOr<Measurement> DecodeVsRead() {
    const int pairs = options_.read_pairs;
    if (pairs < 1) return absl::InvalidArgumentError("tg128_vs_read: read_pairs must be >= 1");
    if (read_ == nullptr) {
      read_ = std::make_unique<ReadPassBuffer>(options_.num_threads, kReadPassBytes);
    }
    if (read_->PassBytesPerSecond(options_.read_pattern) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tg128_vs_read: no read pattern \"", options_.read_pattern, "\" on this CPU"));
    }
    constexpr int kPrompt = 8, kSteps = 128;  // tg128's
    if (absl::Status s = EnsureKv(1, kPrompt + kSteps + 8, KvCacheType::kF16); !s.ok()) return s;
    std::vector<int32_t> tokens = PromptTokens(kPrompt, 1 + salt_);
    if (absl::Status s = PrefillSeq(0, tokens, kPrompt - 1); !s.ok()) return s;
    int pos = kPrompt - 1;
    // One step at tg128's next position, wrapping back to its first (the
    // cache entries it rewrites are its own).
    auto step = [&]() -> absl::Status {
      if (pos == kPrompt - 1 + kSteps) pos = kPrompt - 1;
      ForwardBatch batch;
      batch.sequences.push_back(
          SequenceSlice{std::span<const int32_t>(&tokens[pos], 1), pos, tables_[0], true});
      if (absl::Status s = model_->Forward(batch, Logits(1)); !s.ok()) return s;
      tokens.resize(pos + 1);
      tokens.push_back(Argmax(logits_));
      ++pos;
      return absl::OkStatus();
    };
    // Warm-up: a few steps bring the step's scratch and threads up to speed.
    for (int i = 0; i < 4; ++i) {
      if (absl::Status s = step(); !s.ok()) return s;
    }
    std::vector<double> step_seconds, pass_bytes_s;
    pass_bytes_s.push_back(read_->PassBytesPerSecond(options_.read_pattern));
    for (int i = 0; i < pairs; ++i) {
      const double t0 = NowMs();
      if (absl::Status s = step(); !s.ok()) return s;
      step_seconds.push_back((NowMs() - t0) / 1000);
      pass_bytes_s.push_back(read_->PassBytesPerSecond(options_.read_pattern));
    }
    const ReadShareStats stats =
        ReadShare(step_seconds, pass_bytes_s, DecodeBytesPerToken(model_->file()));
    Measurement m;
    m.value = stats.share;
    m.extras["decode_bytes_s"] = stats.decode_bytes_s;
    m.extras["read_bytes_s"] = stats.read_bytes_s;
    m.extras["pairs"] = pairs;
    return m;
  }

  // Resident bytes added by a 4096-token KV cache filled with 4000 tokens.
  // Extras split it: kv_rss_bytes = the pool (allocated and zeroed up front,
  // so it equals 4096 x kv_bytes_per_token up to page rounding) and
  // fill_rss_bytes = what the fill added (prefill scratch touched for the
  // first time in this process: shared by all sequences, so it shows up only
  // in the first mem:* figure of a run, not per sequence).
  absl::StatusOr<Measurement> Memory(KvCacheType type) {
    if (absl::Status s = EnsureKv(1, kBlockSize, type); !s.ok()) return s;
    const int64_t before = ResidentBytes();
    if (absl::Status s = EnsureKv(1, 4096, type); !s.ok()) return s;
    const int64_t allocated = ResidentBytes();
    const std::vector<int32_t> tokens = PromptTokens(4000, 6 + salt_);
    if (absl::Status s = PrefillSeq(0, tokens, 4000); !s.ok()) return s;
    Measurement m;
    const int64_t after = ResidentBytes();
    m.value = static_cast<double>(after - before);
    m.extras["kv_bytes_per_token"] = static_cast<double>(model_->KvBytesPerToken(type));
    m.extras["kv_rss_bytes"] = static_cast<double>(allocated - before);
    m.extras["fill_rss_bytes"] = static_cast<double>(after - allocated);
    // Give the memory back before the next figure.
    if (absl::Status s = EnsureKv(1, kBlockSize, KvCacheType::kF16); !s.ok()) return s;
    return m;
  }

  const OursOptions options_;
  std::unique_ptr<Phi3Model> model_;
  int kv_blocks_ = 0;
  KvCacheType kv_type_ = KvCacheType::kF16;
  std::vector<std::vector<int32_t>> tables_;  // [sequence][block]
  std::vector<float> logits_;                 // [rows][vocab]
  std::unique_ptr<ReadPassBuffer> read_;      // tg128_vs_read's passes
  int run_count_ = 0;
  int salt_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<OursRunner>> NewModelRunner(const OursOptions& options) {
  ModelOptions model_options;
  model_options.num_threads = options.num_threads;
  model_options.context_size = 0;  // min(4096, trained): room for mem's 4096 tokens
  auto model = Phi3Model::Open(options.model_path, model_options);
  if (!model.ok()) return model.status();
  auto runner = std::make_unique<ModelRunner>(options, *std::move(model));
  if (absl::Status s = runner->Warmup(); !s.ok()) return s;
  return runner;
}

}  // namespace phi3::bench
