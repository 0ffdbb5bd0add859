// Engine end to end on a generated tiny Phi-3 file (phi3_mkmodel_lib):
// loading, introspection, and the serving property that batching, chunked
// prefill, the prefix cache and preemption never change what a request
// generates (tokens identical, logprobs within 1e-4) compared with
// one-at-a-time runs without the prefix cache.
#include "engine/engine.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "engine/sched/testing/fakes.h"
#include "engine/tools/mkmodel/phi3_model_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3 {
namespace {

using ::phi3::testing::RecordingSink;
using ::testing::HasSubstr;

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::string((std::filesystem::temp_directory_path() /
                             ("phi3_engine_test_" + std::to_string(::getpid()) + ".gguf"))
                                .string());
    Phi3ModelOptions o;
    o.dims = *Phi3PresetDims("tiny");
    o.dims.n_ctx = 512;
    o.dims.n_ctx_orig = 512;
    o.format = WeightFormat::kQ8_0;  // the fastest kernels; exactness is not the point here
    o.seed = 5;
    o.num_threads = 2;
    absl::Status s = WritePhi3Model(o, *path_);
    ASSERT_TRUE(s.ok()) << s;
  }
  static void TearDownTestSuite() {
    std::remove(path_->c_str());
    delete path_;
  }

  static EngineOptions Options() {
    EngineOptions o;
    o.model_path = *path_;
    o.num_threads = 2;
    o.context_size = 256;
    o.kv_block_size = 16;
    return o;
  }

  static std::string* path_;
};
std::string* EngineTest::path_ = nullptr;

std::string Sha256Sum(const std::string& path) {
  std::string cmd = "sha256sum '" + path + "'";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[65] = {};
  if (p == nullptr || std::fread(buf, 1, 64, p) != 64) buf[0] = 0;
  if (p != nullptr) pclose(p);
  return buf;
}

TEST_F(EngineTest, LoadsAndDescribesTheModel) {
  auto engine = Engine::Create(Options());
  ASSERT_TRUE(engine.ok()) << engine.status();
  const ModelInfo& info = (*engine)->Info();
  EXPECT_EQ(info.architecture, "phi3");
  EXPECT_THAT(info.name, HasSubstr("Phi-3"));
  EXPECT_EQ(info.quantization, "q8_0");
  EXPECT_EQ(info.vocab_size, 32064);
  EXPECT_EQ(info.num_layers, 2);
  EXPECT_EQ(info.embedding_size, 256);
  EXPECT_EQ(info.context_length, 512);
  EXPECT_EQ(info.context_size, 256);
  EXPECT_GT(info.parameter_count, 16'000'000);
  EXPECT_EQ(info.file_sha256, Sha256Sum(*path_));
  EngineStats stats = (*engine)->Stats();
  EXPECT_GE(stats.kv_blocks_total, 16);
  EXPECT_EQ(stats.kv_blocks_used, 0);

  auto ids = (*engine)->Tokenize("Hello world", true, false);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 1);  // BOS
  EXPECT_EQ((*engine)->Detokenize({ids.begin() + 1, ids.end()}), "Hello world");
  auto chat = (*engine)->ApplyChatTemplate({{ChatMessage::Role::kUser, "Hi"}});
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_EQ(chat->back(), 32001);  // <|assistant|>
}

TEST_F(EngineTest, LoadErrorsNameTheProblem) {
  EngineOptions o = Options();
  o.model_path = "/nonexistent/model.gguf";
  EXPECT_EQ(Engine::Create(o).status().code(), absl::StatusCode::kNotFound);
  o = Options();
  o.kv_cache_bytes = 1000;
  auto s = Engine::Create(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("kv_cache_bytes = 1000"));
  o = Options();
  o.kv_block_size = 0;
  EXPECT_THAT(Engine::Create(o).status().message(), HasSubstr("kv_block_size"));
}

// Every report of a ProgressCallback, per phase, in order. std::mutex, not
// absl::Mutex: ThreadSanitizer sees only the former (Debian's abseil is not
// built with it), and the callback runs on two threads.
class ProgressLog {
 public:
  ProgressCallback Callback() {
    return [this](std::string_view phase, int64_t done, int64_t total) {
      std::lock_guard<std::mutex> lock(mu_);
      reports_[std::string(phase)].push_back({done, total});
    };
  }
  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> reports() {
    std::lock_guard<std::mutex> lock(mu_);
    return reports_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> reports_;
};

// Reports grow to done == total, with one total per phase.
void ExpectCompletes(const std::vector<std::pair<int64_t, int64_t>>& reports,
                     int64_t total_bytes, const std::string& phase) {
  ASSERT_FALSE(reports.empty()) << phase;
  for (size_t i = 0; i < reports.size(); ++i) {
    EXPECT_EQ(reports[i].second, total_bytes) << phase;
    if (i > 0) EXPECT_GE(reports[i].first, reports[i - 1].first) << phase;
  }
  EXPECT_EQ(reports.back().first, total_bytes) << phase;
}

TEST(EngineLoad, ReportsTheProgressOfWritingMappingPackingAndHashing) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("phi3_engine_progress_" + std::to_string(::getpid()) + ".gguf"))
                               .string();
  Phi3ModelOptions m;
  m.dims = *Phi3PresetDims("tiny");
  m.dims.n_layer = 1;
  m.format = WeightFormat::kQ4_0;  // packed at load
  m.num_threads = 2;
  ProgressLog writing;
  m.progress = writing.Callback();
  ASSERT_TRUE(WritePhi3Model(m, path).ok());
  const int64_t file_bytes = static_cast<int64_t>(std::filesystem::file_size(path));
  const auto written = writing.reports().at("writing");
  ExpectCompletes(written, written.back().second, "writing");
  EXPECT_GT(written.back().second, file_bytes / 2);  // tensor data, most of the file
  EXPECT_LT(written.back().second, file_bytes);

  ProgressLog loading;
  EngineOptions o;
  o.model_path = path;
  o.num_threads = 2;
  o.context_size = 256;
  o.load_progress = loading.Callback();
  {
    auto engine = Engine::Create(o);
    ASSERT_TRUE(engine.ok()) << engine.status();
    EXPECT_EQ((*engine)->Info().file_sha256.size(), 64u);  // the hash is done
  }
  auto reports = loading.reports();
  EXPECT_EQ(reports.size(), 3u);
  ExpectCompletes(reports["mapping and checking"], file_bytes, "mapping and checking");
  ExpectCompletes(reports["hashing"], file_bytes, "hashing");
  const auto& packing = reports["packing weights"];
  ASSERT_FALSE(packing.empty());
  ExpectCompletes(packing, packing.back().second, "packing weights");
  EXPECT_EQ(packing.front().first, 0);
  EXPECT_GT(packing.back().second, 0);
  std::remove(path.c_str());
}

struct RunResult {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;  // chosen token's, per step
  FinishEvent finish;
};

std::vector<RunResult> Generate(Engine& engine, const std::vector<GenerateRequest>& requests,
                                int submit_every) {
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto sink = std::make_shared<RecordingSink>();
    auto id = engine.Submit(requests[i], sink);
    EXPECT_TRUE(id.ok()) << id.status();
    sinks.push_back(sink);
    if (submit_every == 0) {  // one at a time
      while (!sink->finished()) absl::SleepFor(absl::Milliseconds(1));
    } else if (i % submit_every == 0) {
      absl::SleepFor(absl::Milliseconds(3));  // staggered arrivals
    }
  }
  std::vector<RunResult> runs;
  for (auto& sink : sinks) {
    while (!sink->finished()) absl::SleepFor(absl::Milliseconds(1));
    RunResult r;
    for (const TokenEvent& e : sink->events()) {
      r.tokens.push_back(e.token_id);
      r.logprobs.push_back(e.logprob);
    }
    r.finish = sink->finish();
    runs.push_back(r);
  }
  return runs;
}

TEST_F(EngineTest, BatchedCachedPreemptedMatchOneAtATime) {
  std::mt19937 rng(11);
  std::vector<GenerateRequest> requests;
  std::vector<int32_t> shared;
  for (int i = 0; i < 40; ++i) shared.push_back(100 + (i * 37) % 5000);
  for (int i = 0; i < 9; ++i) {
    GenerateRequest r;
    if (i % 3 != 2) r.prompt_tokens = shared;  // shared prefix for the cache
    const int tail = 1 + rng() % 30;
    for (int t = 0; t < tail; ++t) r.prompt_tokens.push_back(200 + rng() % 20000);
    r.sampling.temperature = i % 4 == 3 ? 0.9f : 0.0f;  // some seeded sampling too
    r.sampling.seed = i;
    r.sampling.logprobs = true;
    r.stop.max_tokens = 4 + rng() % 12;
    r.stop.ignore_eos = true;
    requests.push_back(r);
  }

  EngineOptions solo = Options();
  solo.prefix_cache = false;
  solo.max_running_sequences = 1;
  auto a = Engine::Create(solo);
  ASSERT_TRUE(a.ok()) << a.status();
  std::vector<RunResult> expected = Generate(**a, requests, 0);
  a->reset();

  EngineOptions busy = Options();
  busy.max_running_sequences = 8;
  busy.max_batched_tokens = 48;  // chunked prefill
  auto b = Engine::Create(busy);
  ASSERT_TRUE(b.ok());
  // Bytes for exactly one context: forces preemption with 8 running.
  const int64_t blocks = 256 / 16;
  EngineOptions tight = busy;
  {
    // KvBytesPerToken of the tiny model at f16: 2 layers * 2 * 256 * 2 bytes.
    tight.kv_cache_bytes = blocks * 16 * (2 * 2 * 256 * 2);
  }
  std::vector<RunResult> batched = Generate(**b, requests, 3);
  EngineStats batched_stats = (*b)->Stats();
  b->reset();
  auto c = Engine::Create(tight);
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<RunResult> preempted = Generate(**c, requests, 4);
  EngineStats tight_stats = (*c)->Stats();

  float max_diff = 0.0f;
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(batched[i].tokens, expected[i].tokens) << "request " << i;
    EXPECT_EQ(preempted[i].tokens, expected[i].tokens) << "request " << i;
    ASSERT_EQ(batched[i].logprobs.size(), expected[i].logprobs.size());
    for (size_t t = 0; t < expected[i].logprobs.size() && t < preempted[i].logprobs.size(); ++t) {
      max_diff = std::max(max_diff, std::abs(batched[i].logprobs[t] - expected[i].logprobs[t]));
      max_diff = std::max(max_diff, std::abs(preempted[i].logprobs[t] - expected[i].logprobs[t]));
    }
    EXPECT_EQ(batched[i].finish.reason, FinishReason::kLength);
    EXPECT_EQ(batched[i].finish.usage.completion_tokens, requests[i].stop.max_tokens);
  }
  EXPECT_LE(max_diff, 1e-4f);
  RecordProperty("max_logprob_diff", std::to_string(max_diff));
  EXPECT_GT(batched_stats.prefix_cache_hit_tokens, 0);
  EXPECT_GT(tight_stats.preemptions, 0);
  EXPECT_EQ(batched_stats.kv_blocks_used, 0);
  EXPECT_EQ(tight_stats.kv_blocks_used, 0);
}

// Stop strings on real detokenized text: take a run's text, pick a piece in
// its middle as the stop string, and rerun: the text must end right before it.
TEST_F(EngineTest, StopStringOnRealText) {
  auto engine = Engine::Create(Options());
  ASSERT_TRUE(engine.ok()) << engine.status();
  GenerateRequest r;
  r.prompt_tokens = (*engine)->Tokenize("Once upon a time", true, false);
  r.stop.max_tokens = 24;
  r.stop.ignore_eos = true;
  r.sampling.temperature = 0.0f;
  auto sink = std::make_shared<RecordingSink>();
  ASSERT_TRUE((*engine)->Submit(r, sink).ok());
  while (!sink->finished()) absl::SleepFor(absl::Milliseconds(1));
  const std::string text = sink->text();
  EXPECT_EQ(text, (*engine)->Detokenize(sink->tokens()).substr(0, text.size()));
  ASSERT_GE(text.size(), 12u) << text;
  // A 3-byte stop string starting at a character boundary in the middle.
  size_t cut = text.size() / 2;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  size_t end = cut + 3;
  while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
  const std::string stop = text.substr(cut, end - cut);
  const size_t first_at = text.find(stop);
  r.stop.stop_strings = {stop};
  auto stopped = std::make_shared<RecordingSink>();
  ASSERT_TRUE((*engine)->Submit(r, stopped).ok());
  while (!stopped->finished()) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(stopped->finish().reason, FinishReason::kStopSequence);
  EXPECT_EQ(stopped->text(), text.substr(0, first_at));
  EXPECT_EQ(stopped->streamed_text().find(stop), std::string::npos);
  EXPECT_LT(stopped->tokens().size(), sink->tokens().size());
}

TEST_F(EngineTest, Q8KvCacheHoldsAboutTwiceTheTokens) {
  EngineOptions o = Options();
  o.kv_cache_bytes = 4 << 20;
  auto f16 = Engine::Create(o);
  ASSERT_TRUE(f16.ok()) << f16.status();
  o.kv_cache_type = KvCacheType::kQ8_0;
  auto q8 = Engine::Create(o);
  ASSERT_TRUE(q8.ok()) << q8.status();
  const int64_t f16_blocks = (*f16)->Stats().kv_blocks_total;
  const int64_t q8_blocks = (*q8)->Stats().kv_blocks_total;
  EXPECT_GT(q8_blocks * 10, f16_blocks * 18) << f16_blocks << " vs " << q8_blocks;
  auto sink = std::make_shared<RecordingSink>();
  GenerateRequest r;
  r.prompt_tokens = {1, 450, 4996, 17354, 1701};
  r.stop.max_tokens = 8;
  r.stop.ignore_eos = true;
  r.sampling.temperature = 0.0f;
  ASSERT_TRUE((*q8)->Submit(r, sink).ok());
  while (!sink->finished()) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(sink->finish().reason, FinishReason::kLength);
  EXPECT_EQ(sink->tokens().size(), 8u);
}

TEST_F(EngineTest, DestructionFinishesInFlightRequests) {
  auto engine = Engine::Create(Options());
  ASSERT_TRUE(engine.ok());
  auto sink = std::make_shared<RecordingSink>();
  GenerateRequest r;
  r.prompt_tokens = {1, 450, 4996};
  r.stop.max_tokens = 200;
  r.stop.ignore_eos = true;
  ASSERT_TRUE((*engine)->Submit(r, sink).ok());
  engine->reset();
  EXPECT_EQ(sink->num_finish_calls(), 1);
}

}  // namespace
}  // namespace phi3
