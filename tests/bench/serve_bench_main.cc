// phi3-serve-bench: issue 4's serving figures measured THROUGH the gRPC
// server, against llama.cpp's own parallel decoding in the same run.
//
// Starts phi3-server on 127.0.0.1 (free ports, read from its ready line) or
// connects to --target, drives N concurrent Generate streams (one client
// thread per stream on one channel), stamps every token when its message
// arrives, and alternates with tests/oracle/bench.mjs (node-llama-cpp, N
// sequences in one context) per repetition. Prints phi3-bench's JSON lines
// and table (engine/tools/bench/bench_report.h). See tests/bench/README.md.
//
// Figures: parallel:N (aggregate tok/s after every stream's first token;
// extras itl_p50_ms, itl_p99_ms, ttft_p50_ms, and, with a server we started,
// preemptions, steps, server_rss_mib), ttft (2,000-token prefix + 50-token
// suffix, cold then warm; value warm/cold, extras cold_ms, warm_ms).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "engine/gguf/gguf_file.h"
#include "engine/model/phi3_hparams.h"
#include "engine/tools/bench/bench_report.h"
#include "engine/tools/bench/bench_result.h"
#include "engine/tools/bench/bench_stats.h"
#include "engine/tools/bench/llama_client.h"
#include "grpcpp/grpcpp.h"
#include "proto/phi3/v1/phi3.grpc.pb.h"
#include "tests/bench/server_process.h"

ABSL_FLAG(std::string, model, "", "GGUF file (required: the server's and llama.cpp's model)");
ABSL_FLAG(std::string, server, PHI3_SERVE_BENCH_DEFAULT_SERVER, "phi3-server executable");
ABSL_FLAG(std::string, target, "",
          "HOST:PORT of a running phi3-server to use instead of starting one (its KV pool and "
          "--max-running must fit the largest parallel:N)");
ABSL_FLAG(std::string, api_key, "", "API key for --target (sent as 'authorization: Bearer')");
ABSL_FLAG(int, threads, 2, "compute threads, the same for both sides");
ABSL_FLAG(int, reps, 3, "repetitions per figure and side; the median is reported");
ABSL_FLAG(std::string, figures, "parallel:1,parallel:4,parallel:16,parallel:64,ttft",
          "comma-separated figures: parallel:N, ttft");
ABSL_FLAG(int, parallel_tokens, 64, "tokens generated per stream in parallel:N");
ABSL_FLAG(std::string, kv_cache_type, "f16", "KV cache type of the server we start");
ABSL_FLAG(std::string, server_args, "",
          "extra flags for the server we start, space-separated (after ours, so they win)");
ABSL_FLAG(bool, llama, true, "also run llama.cpp (node tests/oracle/bench.mjs --serve)");
ABSL_FLAG(std::string, node, "node", "node executable for the llama.cpp side");
ABSL_FLAG(std::string, oracle_script, PHI3_BENCH_DEFAULT_SCRIPT, "path of bench.mjs");

namespace phi3::bench {
namespace {

namespace pb = ::phi3::v1;

double NowMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One finished Generate call: when it was started and when each token
// arrived (every token of a message gets that message's arrival time).
struct StreamTrace {
  double start_ms = 0;
  std::vector<double> stamps;
  grpc::Status status;
  pb::FinishReason finish = pb::FINISH_REASON_UNSPECIFIED;
};

class GrpcRunner {
 public:
  GrpcRunner(std::shared_ptr<grpc::Channel> channel, std::string api_key)
      : stub_(pb::Phi3::NewStub(std::move(channel))), api_key_(std::move(api_key)) {}

  absl::StatusOr<Measurement> Run(const std::string& figure, int parallel_tokens) {
    salt_ = 1000 * run_count_++;
    if (figure == "ttft") return Ttft();
    if (const int n = ParallelStreams(figure); n > 0) return Parallel(n, parallel_tokens);
    return absl::UnimplementedError(absl::StrCat("phi3-serve-bench: no figure \"", figure, "\""));
  }

  // Connection set-up and first-request costs stay out of the figures.
  absl::Status Warmup() {
    auto traces = Generate({PromptTokens(8, 99)}, 4);
    return traces.status();
  }

 private:
  // All prompts as concurrent greedy streams (ignore_eos, max_tokens each);
  // the calls start together once every thread is ready.
  absl::StatusOr<std::vector<StreamTrace>> Generate(
      const std::vector<std::vector<int32_t>>& prompts, int max_tokens) {
    std::vector<StreamTrace> traces(prompts.size());
    absl::Notification go;
    std::vector<std::thread> threads;
    for (size_t i = 0; i < prompts.size(); ++i) {
      threads.emplace_back([&, i] {
        pb::GenerateRequest request;
        for (int32_t id : prompts[i]) request.add_prompt_tokens(id);
        request.mutable_sampling()->set_temperature(0);
        request.mutable_stop()->set_max_tokens(max_tokens);
        request.mutable_stop()->set_ignore_eos(true);
        grpc::ClientContext context;
        if (!api_key_.empty()) context.AddMetadata("authorization", "Bearer " + api_key_);
        StreamTrace& trace = traces[i];
        trace.stamps.reserve(max_tokens);
        go.WaitForNotification();
        trace.start_ms = NowMs();
        auto reader = stub_->Generate(&context, request);
        pb::GenerateResponse chunk;
        while (reader->Read(&chunk)) {
          const double t = NowMs();
          for (int k = 0; k < chunk.token_ids_size(); ++k) trace.stamps.push_back(t);
          if (chunk.finish_reason() != pb::FINISH_REASON_UNSPECIFIED) {
            trace.finish = chunk.finish_reason();
          }
        }
        trace.status = reader->Finish();
      });
    }
    go.Notify();
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < traces.size(); ++i) {
      const StreamTrace& t = traces[i];
      if (!t.status.ok()) {
        return absl::Status(static_cast<absl::StatusCode>(t.status.error_code()),
                            absl::StrCat("stream ", i, ": ", t.status.error_message()));
      }
      if (t.finish != pb::FINISH_REASON_LENGTH ||
          t.stamps.size() != static_cast<size_t>(max_tokens)) {
        return absl::InternalError(absl::StrCat(
            "stream ", i, " finished with ", pb::FinishReason_Name(t.finish), " after ",
            t.stamps.size(), " tokens; expected LENGTH after ", max_tokens));
      }
    }
    return traces;
  }

  // n streams with 8-token prompts, g + 1 tokens each (the first comes from
  // the prefill); throughput counted from the moment every stream has its
  // first token, as phi3-bench's Engine runner and bench.mjs do.
  absl::StatusOr<Measurement> Parallel(int n, int g) {
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < n; ++i) prompts.push_back(PromptTokens(8, 100 + i + salt_));
    auto traces = Generate(prompts, g + 1);
    if (!traces.ok()) return traces.status();
    double t0 = 0, t1 = 0;
    std::vector<double> ttfts;
    for (const StreamTrace& t : *traces) {
      t0 = std::max(t0, t.stamps.front());
      t1 = std::max(t1, t.stamps.back());
      ttfts.push_back(t.stamps.front() - t.start_ms);
    }
    int64_t tokens = 0;
    std::vector<double> gaps;
    for (const StreamTrace& t : *traces) {
      for (size_t i = 1; i < t.stamps.size(); ++i) {
        gaps.push_back(t.stamps[i] - t.stamps[i - 1]);
        if (t.stamps[i] > t0) ++tokens;
      }
    }
    Measurement m;
    m.value = tokens / ((t1 - t0) / 1000);
    m.extras["ms"] = t1 - t0;
    m.extras["itl_p50_ms"] = Percentile(gaps, 50);
    m.extras["itl_p99_ms"] = Percentile(gaps, 99);
    m.extras["ttft_p50_ms"] = Median(ttfts);
    return m;
  }

  // 2000-token prefix + 50-token suffix: cold (fresh prefix) then warm (same
  // prefix, another suffix: the server's prefix cache serves the prefix).
  // TTFT = call start -> first token message.
  absl::StatusOr<Measurement> Ttft() {
    const TtftPrompts prompts = MakeTtftPrompts(salt_);
    double ms[2];
    int idx = 0;
    for (const auto* prompt : {&prompts.cold, &prompts.warm}) {
      auto traces = Generate({*prompt}, 1);
      if (!traces.ok()) return traces.status();
      ms[idx++] = (*traces)[0].stamps.front() - (*traces)[0].start_ms;
    }
    Measurement m;
    m.value = ms[1] / ms[0];
    m.extras["cold_ms"] = ms[0];
    m.extras["warm_ms"] = ms[1];
    return m;
  }

  std::unique_ptr<pb::Phi3::Stub> stub_;
  const std::string api_key_;
  int run_count_ = 0;
  int salt_ = 0;
};

// KV bytes per token of the model's cache: K and V rows of kv_dim per layer;
// f16 2 bytes per element, q8_0 34 bytes per 32 (phi3-mini: 384 / 204 KiB).
absl::StatusOr<int64_t> KvBytesPerToken(const std::string& model, const std::string& kv_type) {
  auto file = GgufFile::Open(model);
  if (!file.ok()) return file.status();
  auto hp = ReadPhi3Hparams(**file);
  if (!hp.ok()) return hp.status();
  const int64_t elements = int64_t{2} * hp->num_layers * hp->kv_dim();
  if (kv_type == "f16") return elements * 2;
  if (kv_type == "q8_0") return elements / 32 * 34;
  return absl::InvalidArgumentError(
      absl::StrCat("--kv_cache_type must be f16 or q8_0, got '", kv_type, "'"));
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "phi3-serve-bench: %s\n", status.ToString().c_str());
  return 1;
}
int Usage(const std::string& message) {
  std::fprintf(stderr, "phi3-serve-bench: %s\n", message.c_str());
  return 2;
}
void Log(const std::string& message) {
  std::fprintf(stderr, "[phi3-serve-bench] %s\n", message.c_str());
}

int Main() {
  const std::string model = absl::GetFlag(FLAGS_model);
  const int threads = absl::GetFlag(FLAGS_threads);
  const int reps = absl::GetFlag(FLAGS_reps);
  const int g = absl::GetFlag(FLAGS_parallel_tokens);
  if (model.empty()) return Usage("--model FILE is required");
  if (threads < 1) return Usage("--threads must be >= 1");
  if (reps < 1) return Usage("--reps must be >= 1");
  if (g < 1) return Usage("--parallel_tokens must be >= 1");
  const std::vector<std::string> figures =
      absl::StrSplit(absl::GetFlag(FLAGS_figures), ',', absl::SkipEmpty());
  int max_streams = 1;
  bool ttft = false;
  for (const auto& f : figures) {
    if (const int n = ParallelStreams(f); n > 0) {
      max_streams = std::max(max_streams, n);
    } else if (f == "ttft") {
      ttft = true;
    } else {
      return Usage(absl::StrCat("unknown figure '", f, "' (parallel:N or ttft)"));
    }
  }

  // llama.cpp first: its load does not compete with our server's.
  std::unique_ptr<LlamaClient> llama;
  if (absl::GetFlag(FLAGS_llama)) {
    Log("starting llama.cpp (node-llama-cpp) ...");
    LlamaClientOptions lo;
    lo.node = absl::GetFlag(FLAGS_node);
    lo.script = absl::GetFlag(FLAGS_oracle_script);
    lo.model_path = model;
    lo.num_threads = threads;
    lo.parallel_tokens = g;
    auto client = LlamaClient::Start(lo);
    if (!client.ok()) return Fail(client.status());
    llama = *std::move(client);
    Log(absl::StrCat("llama.cpp CPU variant: ", llama->info().String("cpu_variant")));
  }

  std::unique_ptr<ServerProcess> server;
  std::string target = absl::GetFlag(FLAGS_target);
  std::string server_flags;
  if (target.empty()) {
    // KV pool in tokens for the largest figure without preemption: every
    // stream's prompt + tokens (+ block rounding), or ttft's two cached
    // ~2k-token prompts, and at least one full 4096-token context. The
    // block size is 16 by default.
    const int64_t per_stream = ((8 + g + 1) + 15) / 16 * 16 + 16;
    const int64_t tokens =
        std::max<int64_t>({int64_t{max_streams} * per_stream, ttft ? 4096 + 512 : 0, 4096});
    auto token_bytes = KvBytesPerToken(model, absl::GetFlag(FLAGS_kv_cache_type));
    if (!token_bytes.ok()) return Fail(token_bytes.status());
    const int64_t kv_mib = (tokens * *token_bytes + (1 << 20) - 1) >> 20;
    std::vector<std::string> args = {
        absl::GetFlag(FLAGS_server), "--model", model, "--listen", "127.0.0.1:0",
        "--metrics-listen", "127.0.0.1:0", "--no-auth", "--threads", absl::StrCat(threads),
        "--ctx", "4096", "--kv-cache-type", absl::GetFlag(FLAGS_kv_cache_type),
        "--kv-cache-mb", absl::StrCat(kv_mib), "--max-running",
        absl::StrCat(std::max(16, max_streams)), "--max-batched-tokens", "512",
        "--max-waiting", absl::StrCat(std::max(256, 2 * max_streams))};
    for (absl::string_view a :
         absl::StrSplit(absl::GetFlag(FLAGS_server_args), ' ', absl::SkipEmpty())) {
      args.emplace_back(a);
    }
    for (size_t i = 1; i < args.size(); ++i) absl::StrAppend(&server_flags, i > 1 ? " " : "", args[i]);
    Log(absl::StrCat("starting ", args[0], " ", server_flags));
    auto started = ServerProcess::Start(args, absl::Minutes(10));
    if (!started.ok()) return Fail(started.status());
    server = *std::move(started);
    target = server->grpc_address();
  }
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(-1);
  GrpcRunner runner(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                              channel_args),
                    server ? "" : absl::GetFlag(FLAGS_api_key));
  if (absl::Status s = runner.Warmup(); !s.ok()) return Fail(s);

  auto counters = [&]() -> std::map<std::string, double> {
    if (server == nullptr) return {};
    auto m = ScrapeMetrics(server->metrics_address());
    return m.ok() ? *m : std::map<std::string, double>{};
  };
  OursFn ours = [&](const std::string& figure, std::string* runner_name) {
    *runner_name = "grpc";
    const auto before = counters();
    auto m = runner.Run(figure, g);
    if (m.ok() && server != nullptr) {
      const auto after = counters();
      for (const char* k : {"phi3_engine_preemptions_total", "phi3_engine_steps_total"}) {
        auto a = after.find(k), b = before.find(k);
        if (a != after.end() && b != before.end()) {
          m->extras[k == std::string("phi3_engine_steps_total") ? "steps" : "preemptions"] =
              a->second - b->second;
        }
      }
      m->extras["server_rss_mib"] = ProcessResidentBytes(server->pid()) / 1048576.0;
    }
    return m;
  };
  LlamaFn llama_fn;
  if (llama != nullptr) llama_fn = [&](const std::string& f) { return llama->Run(f); };

  std::vector<FigureResult> results;
  const std::map<std::string, std::string> extra = {
      {"server_flags", JsonQuote(server_flags)}, {"parallel_tokens", absl::StrCat(g)}};
  for (const std::string& figure : figures) {
    results.push_back(RunFigure(figure, reps, ours, llama_fn, "phi3-serve-bench"));
    std::printf("%s\n", FigureJson(results.back(), model, threads, reps, extra).c_str());
    std::fflush(stdout);
  }
  std::printf("\nphi3-serve-bench  %s  model=%s  threads=%d  reps=%d (median)  via gRPC %s\n",
              UtcNow().c_str(), model.c_str(), threads, reps, target.c_str());
  std::printf("CPU: %s   llama.cpp CPU variant: %s   load average: %s\n", CpuName().c_str(),
              llama ? llama->info().String("cpu_variant").c_str() : "-", LoadAverage().c_str());
  std::printf("%s", FigureTable(results).c_str());
  std::printf("{\"figure\":\"system\",\"tool\":\"phi3-serve-bench\",\"date\":%s,\"cpu\":%s,"
              "\"threads\":%d,\"load_average\":%s,\"llama_cpp_cpu_variant\":%s,\"model\":%s}\n",
              JsonQuote(UtcNow()).c_str(), JsonQuote(CpuName()).c_str(), threads,
              JsonQuote(LoadAverage()).c_str(),
              JsonQuote(llama ? llama->info().String("cpu_variant") : "").c_str(),
              JsonQuote(model).c_str());
  std::fflush(stdout);
  bool failed = false;
  for (const auto& r : results) failed |= !r.error.empty();
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace phi3::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "phi3-serve-bench --model FILE [--threads N] [--reps R] [--figures parallel:1,...,ttft] "
      "[--target HOST:PORT] [--nollama]\nIssue 4's serving figures through phi3-server's gRPC "
      "API vs llama.cpp; see tests/bench/README.md.");
  absl::ParseCommandLine(argc, argv);
  return phi3::bench::Main();
}
