// phi3_stream_overhead_bench: per-token cost of streaming through phi3-server's
// gRPC service versus the engine alone, on the same Engine instance.
//
//   phi3_stream_overhead_bench --model FILE.gguf|fake [--tokens 64] [--rounds 7] [--threads 0]
//                              [--fake-step-us 1000]
//
// Each round runs one greedy request (ignore_eos, `tokens` completion tokens)
// twice, alternating: (A) Engine::Submit with a sink that timestamps tokens on
// the engine thread; (B) the same request as a Generate call over loopback gRPC
// to an in-process Phi3Service, timestamped when the client receives them.
// Per-token time = (last token - first token) / (tokens - 1): decode only, so
// the prompt and connection setup do not count. Reports medians and
// overhead = B / A - 1, for wall time and for the process's CPU time per
// token (all threads: engine, gRPC and client; steadier on a loaded machine).
// Not a ctest test: timings depend on the machine.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "engine/engine.h"
#include "grpcpp/grpcpp.h"
#include "proto/phi3/v1/phi3.grpc.pb.h"
#include "service/auth.h"
#include "service/metrics.h"
#include "service/phi3_service.h"
#include "service/testing/fake_engine.h"

namespace {

struct Args {
  std::string model;
  int tokens = 64;
  int rounds = 7;
  int threads = 0;
  int fake_step_us = 1000;  // --model fake: time between tokens
};

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--model") a.model = value;
    else if (flag == "--tokens") (void)absl::SimpleAtoi(value, &a.tokens);
    else if (flag == "--rounds") (void)absl::SimpleAtoi(value, &a.rounds);
    else if (flag == "--threads") (void)absl::SimpleAtoi(value, &a.threads);
    else if (flag == "--fake-step-us") (void)absl::SimpleAtoi(value, &a.fake_step_us);
  }
  if (a.model.empty() || a.tokens < 2) {
    std::fprintf(stderr, "usage: %s --model FILE.gguf [--tokens N>=2] [--rounds R] [--threads T]\n",
                 argv[0]);
    std::exit(2);
  }
  return a;
}

class TimingSink : public phi3::TokenSink {
 public:
  bool OnToken(const phi3::TokenEvent&) override {
    times.push_back(absl::Now());
    return true;
  }
  void OnFinish(const phi3::FinishEvent&) override { done.Notify(); }
  std::vector<absl::Time> times;
  absl::Time start;
  absl::Notification done;
};

double PerTokenMs(const std::vector<absl::Time>& times, int tokens) {
  if (static_cast<int>(times.size()) < 2) return 0;
  return absl::ToDoubleMilliseconds(times.back() - times.front()) / (tokens - 1);
}

// CPU time of the whole process (all threads), seconds.
double ProcessCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when piped
  phi3::EngineOptions options;
  options.model_path = args.model;
  options.num_threads = args.threads;
  options.prefix_cache = false;  // both paths must do the same prompt work
  options.context_size = 512;
  options.max_running_sequences = 2;
  options.kv_cache_bytes = int64_t{256} << 20;
  // --model fake: the service's fake engine, producing tokens with no model
  // work, so the figures are the service + gRPC + client cost per token alone.
  absl::StatusOr<std::unique_ptr<phi3::Engine>> engine;
  if (args.model == "fake") {
    phi3::service::testing::FakeEngineOptions fake;
    fake.step = absl::Microseconds(args.fake_step_us);
    fake.context_size = 4096;
    fake.vocab_size = 300;
    engine = std::unique_ptr<phi3::Engine>(new phi3::service::testing::FakeEngine(fake));
  } else {
    engine = phi3::Engine::Create(options);
  }
  if (!engine.ok()) {
    std::fprintf(stderr, "cannot load %s: %s\n", args.model.c_str(),
                 engine.status().ToString().c_str());
    return 1;
  }
  const phi3::ModelInfo& info = (*engine)->Info();

  phi3::service::Authenticator auth(nullptr);
  phi3::service::ServiceMetrics metrics(phi3::service::Prices{}, 10,
                                        [&] { return (*engine)->Stats(); }, info);
  phi3::service::ServiceOptions service_options;
  service_options.limits.context_size = info.context_size;
  service_options.limits.vocab_size = info.vocab_size;
  service_options.max_buffered_tokens = 1 << 20;  // the fake engine outruns any client
  phi3::service::GenerationService core(engine->get(), &auth, &metrics, service_options);
  phi3::service::Phi3Service service(&core);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  auto stub = phi3::v1::Phi3::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));

  const std::string prompt = "The quick brown fox jumps over the lazy dog";
  phi3::GenerateRequest engine_request;
  engine_request.prompt_tokens = (*engine)->Tokenize(prompt, true, false);
  engine_request.sampling.temperature = 0;
  engine_request.stop.max_tokens = args.tokens;
  engine_request.stop.ignore_eos = true;
  phi3::v1::GenerateRequest rpc_request;
  rpc_request.set_prompt(prompt);
  rpc_request.mutable_sampling()->set_temperature(0);
  rpc_request.mutable_stop()->set_max_tokens(args.tokens);
  rpc_request.mutable_stop()->set_ignore_eos(true);

  std::vector<double> engine_ms, grpc_ms, engine_cpu_ms, grpc_cpu_ms;
  for (int round = -1; round < args.rounds; ++round) {  // round -1 warms up
    // Alternate which path goes first so neither always follows the other.
    double engine_cpu = 0;
    auto run_engine = [&] {
      auto sink = std::make_shared<TimingSink>();
      sink->start = absl::Now();
      const double cpu0 = ProcessCpuSeconds();
      if (!(*engine)->Submit(engine_request, sink).ok()) std::exit(1);
      sink->done.WaitForNotification();
      engine_cpu = ProcessCpuSeconds() - cpu0;
      return sink;
    };
    std::shared_ptr<TimingSink> sink;
    if (round % 2 == 0) sink = run_engine();

    grpc::ClientContext context;
    const double rpc_cpu0 = ProcessCpuSeconds();
    auto reader = stub->Generate(&context, rpc_request);
    std::vector<absl::Time> times;
    phi3::v1::GenerateResponse m;
    while (reader->Read(&m)) {
      const absl::Time now = absl::Now();
      for (int i = 0; i < m.token_ids_size(); ++i) times.push_back(now);
    }
    const bool rpc_ok = reader->Finish().ok();
    const double rpc_cpu = ProcessCpuSeconds() - rpc_cpu0;
    if (!rpc_ok || static_cast<int>(times.size()) != args.tokens) {
      std::fprintf(stderr, "gRPC stream failed\n");
      return 1;
    }
    if (round % 2 != 0) sink = run_engine();
    if (round < 0) continue;
    engine_cpu_ms.push_back(engine_cpu * 1e3 / args.tokens);
    grpc_cpu_ms.push_back(rpc_cpu * 1e3 / args.tokens);
    engine_ms.push_back(PerTokenMs(sink->times, args.tokens));
    grpc_ms.push_back(PerTokenMs(times, args.tokens));
    std::printf("round %d: engine %.4f ms/token (cpu %.4f), gRPC stream %.4f ms/token (cpu %.4f)\n",
                round, engine_ms.back(), engine_cpu_ms.back(), grpc_ms.back(), grpc_cpu_ms.back());
  }
  const double a = Median(engine_ms), b = Median(grpc_ms);
  std::printf("model %s (%s, %d layers, embd %d), %d tokens x %d rounds\n", info.name.c_str(),
              info.quantization.c_str(), info.num_layers, info.embedding_size, args.tokens,
              args.rounds);
  std::printf("median wall time per token: engine alone %.4f ms, through gRPC %.4f ms, "
              "overhead %+.2f%%\n", a, b, (b / a - 1) * 100);
  const double ca = Median(engine_cpu_ms), cb = Median(grpc_cpu_ms);
  std::printf("median process CPU per token (all threads): engine alone %.4f ms, through gRPC "
              "%.4f ms, overhead %+.2f%%\n", ca, cb, (cb / ca - 1) * 100);
  server->Shutdown();
  return 0;
}
