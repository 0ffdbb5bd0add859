// phi3-server: serves phi3.v1.Phi3 over gRPC from a Phi-3 GGUF file, with
// Prometheus metrics on their own port.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>
#include <algorithm>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/flags.h"
#include "cli/progress.h"
#include "cli/version.h"
#include "engine/engine.h"
#include "grpc/support/log.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/exposer.h"
#include "service/auth.h"
#include "service/flag_checks.h"
#include "service/generation_service.h"
#include "service/http_server.h"
#include "service/ledger/ledger_store.h"
#include "service/ledger/usage_ledger.h"
#include "service/ledger_metrics.h"
#include "service/metrics.h"
#include "service/listen_check.h"
#include "service/phi3_service.h"
#include "service/process_metrics.h"
#include "service/reflection_service.h"
#include "service/restore_daily_usage.h"
#include "service/tenant_limiter.h"
#include "service/request_convert.h"

ABSL_FLAG(std::string, model, "", "Phi-3 GGUF model file (required).");
ABSL_FLAG(std::string, model_sha256, "",
          "Expected SHA-256 of --model (hex); on a mismatch the server exits before serving.");
ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "gRPC address HOST:PORT; port 0 picks a free port (printed in the ready line).");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9400",
          "Prometheus /metrics address HOST:PORT (port 0 picks one); empty disables.");
ABSL_FLAG(std::string, http_listen, "",
          "OpenAI-compatible HTTP API address HOST:PORT (port 0 picks one); empty disables.");
ABSL_FLAG(std::string, served_model_name, "",
          "Model name the HTTP API lists and answers with; empty = the file name without .gguf.");
ABSL_FLAG(int, http_threads, 32, "HTTP connections served at once (more wait in a queue).");
ABSL_FLAG(std::string, api_keys, "",
          "API keys file: `KEY TENANT [group=G] [streams=N] [tpm=N] [tpd=N]` per line, "
          "# comments; reloaded on SIGHUP (a reload that yields no key keeps the current ones).");
ABSL_FLAG(bool, no_auth, false, "Accept calls without API keys (local use only).");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain; with --tls-key enables TLS.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls-cert.");
ABSL_FLAG(int, threads, 0, "Engine compute threads; 0 = all cores (at most 4 per core).");
ABSL_FLAG(int, ctx, 0, "Context size per sequence in tokens; 0 = min(4096, model's).");
ABSL_FLAG(int64_t, kv_cache_mb, 0, "KV cache pool in MiB; 0 = engine default.");
ABSL_FLAG(std::string, kv_cache_type, "f16", "KV cache element type: f16 or q8_0.");
// Defaults: the engine's one definition (engine/sched/scheduling_options.h).
ABSL_FLAG(int, kv_block_size, phi3::SchedulingOptions().kv_block_size,
          "Tokens per KV cache block.");
ABSL_FLAG(int, max_running, phi3::SchedulingOptions().max_running_sequences,
          "Sequences batched in one engine step.");
ABSL_FLAG(int, max_batched_tokens, phi3::SchedulingOptions().max_batched_tokens,
          "Tokens (decode + prefill chunks) per engine step.");
ABSL_FLAG(int, max_waiting, phi3::SchedulingOptions().max_waiting_requests,
          "Queued requests beyond which calls get RESOURCE_EXHAUSTED.");
ABSL_FLAG(bool, prefix_cache, phi3::SchedulingOptions().prefix_cache,
          "Reuse the KV cache of identical prompt prefixes.");
ABSL_FLAG(bool, isolate_tenants, phi3::service::ServiceOptions().isolate_tenants,
          "Each tenant (or keys-file share group) gets its own prompt-prefix cache; false shares "
          "one cache among all tenants, which lets them learn each other's prompts from "
          "cached_prompt_tokens and timing (see README, Security).");
ABSL_FLAG(int, max_streams_per_tenant, phi3::service::TenantLimiterOptions().default_max_streams,
          "Open Generate/Chat streams per tenant unless its keys-file line says streams=N; "
          "0 = no limit.");
ABSL_FLAG(absl::Duration, stream_idle_timeout, phi3::service::ServiceOptions().stream_idle_timeout,
          "A stream whose client reads nothing for this long is cancelled; inf = never.");
ABSL_FLAG(int64_t, max_prompt_bytes, 0,
          "Bytes of prompt text (Generate, Chat, Tokenize) accepted before tokenizing; "
          "0 = 64 per context token.");
ABSL_FLAG(int, default_max_tokens, phi3::service::RequestLimits().default_max_tokens,
          "max_tokens when a request gives 0.");
ABSL_FLAG(int, max_stop_strings, phi3::service::RequestLimits().max_stop_strings,
          "Stop strings allowed per request; at most the engine's limit (the default).");
ABSL_FLAG(int, max_buffered_tokens, 1024,
          "Tokens a stream may buffer for a slow client before it is cancelled.");
ABSL_FLAG(double, price_input, 1.0, "USD per million (uncached) prompt tokens.");
ABSL_FLAG(double, price_cached_input, 0.5, "USD per million prompt tokens from the prefix cache.");
ABSL_FLAG(double, price_output, 4.0, "USD per million completion tokens.");
ABSL_FLAG(int, max_tenant_labels, 100,
          "Distinct tenant label values in metrics; later tenants are counted as \"other\".");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(30),
          "On SIGTERM, how long in-flight streams may take to finish.");
ABSL_FLAG(bool, reflection, true, "Serve gRPC server reflection.");
ABSL_FLAG(std::string, usage_ledger, "sqlite:phi3-usage.db",
          "Where every finished request is recorded: sqlite:PATH, postgresql://... or none.");
ABSL_FLAG(std::string, usage_ledger_spill, "",
          "Spill file for ledger records while the database is down (one per server); "
          "default: the SQLite PATH + \".spill\", or phi3-usage-ledger.spill for PostgreSQL.");

namespace phi3::service {
namespace {

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "phi3-server: %s\n", message.c_str());
  std::fflush(stderr);
  std::exit(1);
}

void Log(const std::string& message) {
  std::fprintf(stderr, "phi3-server: %s\n", message.c_str());
  std::fflush(stderr);
}

std::string ReadFileOrDie(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) Fail(absl::StrCat("cannot read ", what, " ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Checks the numeric, price, duration and address flags the engine and
// ValidateRequestLimits do not; the first problem ends the program with one
// line.
void CheckFlags() {
  const absl::Status checks[] = {
      CheckFlagRange("threads", absl::GetFlag(FLAGS_threads), 0, MaxComputeThreads()),
      CheckFlagRange("ctx", absl::GetFlag(FLAGS_ctx), 0, 1 << 20),
      CheckFlagRange("kv-cache-mb", absl::GetFlag(FLAGS_kv_cache_mb), 0, int64_t{1} << 30),
      CheckFlagRange("max-buffered-tokens", absl::GetFlag(FLAGS_max_buffered_tokens), 1, 1 << 20),
      CheckFlagRange("max-tenant-labels", absl::GetFlag(FLAGS_max_tenant_labels), 1, 100000),
      CheckFlagRange("max-streams-per-tenant", absl::GetFlag(FLAGS_max_streams_per_tenant), 0,
                     1 << 20),
      CheckFlagRange("max-prompt-bytes", absl::GetFlag(FLAGS_max_prompt_bytes), 0,
                     int64_t{1} << 30),
      CheckPriceFlag("price-input", absl::GetFlag(FLAGS_price_input)),
      CheckPriceFlag("price-cached-input", absl::GetFlag(FLAGS_price_cached_input)),
      CheckPriceFlag("price-output", absl::GetFlag(FLAGS_price_output)),
      CheckDurationFlag("drain-timeout", absl::GetFlag(FLAGS_drain_timeout), absl::ZeroDuration(),
                        false),
      CheckDurationFlag("stream-idle-timeout", absl::GetFlag(FLAGS_stream_idle_timeout),
                        absl::Milliseconds(1), true),
      CheckListenFlag("listen", absl::GetFlag(FLAGS_listen)).status(),
      absl::GetFlag(FLAGS_metrics_listen).empty()
          ? absl::OkStatus()
          : CheckListenFlag("metrics-listen", absl::GetFlag(FLAGS_metrics_listen)).status(),
  };
  for (const absl::Status& s : checks) {
    if (!s.ok()) Fail(std::string(s.message()));
  }
}

std::string HostOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

// gRPC logs its own lines (e.g. a raw E-line for a taken port) to stderr;
// ours say what matters. GRPC_VERBOSITY (gRPC's own variable) brings them back.
void QuietGrpcLogs() {
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
}

const cli::ProgramInfo& ServerProgram() {
  static const cli::ProgramInfo* info = new cli::ProgramInfo{
      "phi3-server",
      "serves Phi-3-mini from a GGUF file over gRPC (phi3.v1.Phi3) and an optional "
      "OpenAI-compatible HTTP API, with Prometheus metrics.",
      "phi3-server --model FILE.gguf (--api-keys FILE | --no-auth) [options]",
      {{"Model", {"model=FILE.gguf", "model_sha256=HEX", "served_model_name=NAME", "threads=N",
                  "ctx=TOKENS"}},
       {"Network",
        {"listen=HOST:PORT", "http_listen=HOST:PORT", "metrics_listen=HOST:PORT",
         "http_threads=N", "reflection", "drain_timeout=DURATION"}},
       {"Security",
        {"api_keys=FILE", "no_auth", "tls_cert=FILE.pem", "tls_key=FILE.pem",
         "isolate_tenants", "max_streams_per_tenant=N"}},
       {"Engine limits",
        {"max_running=N", "max_batched_tokens=N", "max_waiting=N", "kv_cache_mb=MIB",
         "kv_cache_type=TYPE", "kv_block_size=TOKENS", "prefix_cache", "default_max_tokens=N",
         "max_prompt_bytes=BYTES", "max_stop_strings=N", "max_buffered_tokens=N",
         "stream_idle_timeout=DURATION"}},
       {"Prices and accounting",
        {"price_input=USD", "price_cached_input=USD", "price_output=USD",
         "usage_ledger=URI", "usage_ledger_spill=FILE", "max_tenant_labels=N"}}},
      "  phi3-server --model Phi-3-mini-4k-instruct-q4.gguf --no-auth\n"
      "  phi3-server --model m.gguf --api-keys keys.txt --listen 0.0.0.0:50051 \\\n"
      "      --http-listen 0.0.0.0:8080 --tls-cert cert.pem --tls-key key.pem --threads 8\n"
      "  PHI3_MODEL=m.gguf PHI3_NO_AUTH=true phi3-server\n",
      "Logs one line containing \"ready grpc=HOST:PORT metrics=HOST:PORT http=HOST:PORT\"\n"
      "when serving. SIGHUP reloads the API keys; SIGTERM drains in-flight requests, then\n"
      "exits 0. Exit status 1: cannot start (the message says why).\n",
      /*environment=*/true};
  return *info;
}

int Run() {
  // Signals are taken by sigwait below; block them before any thread starts
  // so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A write to a vanished HTTP client must fail, not kill the server.
  signal(SIGPIPE, SIG_IGN);

  const std::string model_path = absl::GetFlag(FLAGS_model);
  if (model_path.empty()) Fail("--model FILE is required (see --help)");
  const bool no_auth = absl::GetFlag(FLAGS_no_auth);
  const std::string keys_path = absl::GetFlag(FLAGS_api_keys);
  if (no_auth == !keys_path.empty()) {
    Fail("give exactly one of --api-keys FILE or --no-auth");
  }
  const std::string tls_cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string tls_key = absl::GetFlag(FLAGS_tls_key);
  if (tls_cert.empty() != tls_key.empty()) Fail("--tls-cert and --tls-key go together");
  CheckFlags();

  std::unique_ptr<ApiKeyStore> keys;
  if (!no_auth) {
    absl::StatusOr<std::unique_ptr<ApiKeyStore>> loaded = ApiKeyStore::Load(keys_path);
    if (!loaded.ok()) {
      Fail(absl::StrCat("no usable API key, not starting: ", loaded.status().message(),
                        " (--no-auth serves without keys)"));
    }
    keys = *std::move(loaded);
  }
  const Authenticator auth(keys.get());

  // Checked before loading a multi-GB file; the context and vocabulary come
  // from the model.
  RequestLimits limits;
  limits.default_max_tokens = absl::GetFlag(FLAGS_default_max_tokens);
  limits.max_stop_strings = absl::GetFlag(FLAGS_max_stop_strings);
  if (absl::Status s = ValidateRequestLimits(limits); !s.ok()) Fail(std::string(s.message()));

  EngineOptions engine_options;
  engine_options.model_path = model_path;
  engine_options.num_threads = absl::GetFlag(FLAGS_threads);
  engine_options.context_size = absl::GetFlag(FLAGS_ctx);
  engine_options.kv_cache_bytes = absl::GetFlag(FLAGS_kv_cache_mb) << 20;
  const std::string kv_type = absl::GetFlag(FLAGS_kv_cache_type);
  if (kv_type == "f16") {
    engine_options.kv_cache_type = KvCacheType::kF16;
  } else if (kv_type == "q8_0") {
    engine_options.kv_cache_type = KvCacheType::kQ8_0;
  } else {
    Fail(absl::StrCat("--kv-cache-type must be f16 or q8_0, got ", kv_type));
  }
  engine_options.kv_block_size = absl::GetFlag(FLAGS_kv_block_size);
  engine_options.max_running_sequences = absl::GetFlag(FLAGS_max_running);
  engine_options.max_batched_tokens = absl::GetFlag(FLAGS_max_batched_tokens);
  engine_options.max_waiting_requests = absl::GetFlag(FLAGS_max_waiting);
  engine_options.prefix_cache = absl::GetFlag(FLAGS_prefix_cache);
  if (absl::Status s = ValidateSchedulingOptions(engine_options); !s.ok()) {
    Fail(absl::StrCat("scheduling flags (--kv-block-size, --max-running, --max-batched-tokens, "
                      "--max-waiting): ", s.message()));
  }

  // Outlives the engine, which reports to it while hashing.
  cli::Progress progress("phi3-server");
  engine_options.load_progress = progress.Callback();
  absl::StatusOr<std::unique_ptr<Engine>> created = Engine::Create(engine_options);
  if (!created.ok()) {
    progress.EndLine();
    Fail(absl::StrCat("cannot load model ", model_path, ": ", created.status().ToString()));
  }
  std::unique_ptr<Engine> engine = *std::move(created);
  const ModelInfo& info = engine->Info();  // waits for the SHA-256
  progress.EndLine();
  Log(absl::StrCat("loaded ", info.name, ": ",
                   absl::StrJoin(info.tensor_types, ", ",
                                 [](std::string* out, const std::pair<std::string, int>& t) {
                                   absl::StrAppend(out, t.first, " x ", t.second);
                                 }),
                   "; context ", info.context_size, " of ", info.context_length,
                   " trained; sha256 ", info.file_sha256));
  if (const std::string want = absl::AsciiStrToLower(absl::GetFlag(FLAGS_model_sha256));
      !want.empty() && want != info.file_sha256) {
    Fail(absl::StrCat("--model-sha256: ", model_path, " has SHA-256 \"", info.file_sha256,
                      "\", expected \"", want, "\""));
  }

  Prices prices{absl::GetFlag(FLAGS_price_input), absl::GetFlag(FLAGS_price_cached_input),
                absl::GetFlag(FLAGS_price_output)};
  Engine* engine_ptr = engine.get();
  auto metrics = std::make_shared<ServiceMetrics>(
      prices, absl::GetFlag(FLAGS_max_tenant_labels),
      [engine_ptr] { return engine_ptr->Stats(); }, info);

  auto process_metrics = std::make_shared<ProcessMetrics>(ProjectVersion(), GitRevision());
  std::unique_ptr<prometheus::Exposer> exposer;
  std::string metrics_address = "off";
  if (const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
      !metrics_listen.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(metrics_listen, 2);
    } catch (const std::exception& e) {
      // prometheus-cpp only says "null context when constructing CivetServer".
      Fail(absl::StrCat("cannot listen for metrics on ", metrics_listen, ": ",
                        WhyCannotListen(metrics_listen)));
    }
    exposer->RegisterCollectable(metrics);
    exposer->RegisterCollectable(process_metrics);
    const std::vector<int> ports = exposer->GetListeningPorts();
    metrics_address = absl::StrCat(HostOf(metrics_listen), ":", ports.empty() ? 0 : ports[0]);
  }

  TenantLimiterOptions limiter_options;
  limiter_options.default_max_streams = absl::GetFlag(FLAGS_max_streams_per_tenant);
  TenantLimiter limiter(limiter_options);

  // Declared before the service, so destroyed after it: every record of a
  // finished stream is stored before the process exits.
  std::unique_ptr<ledger::UsageLedger> usage_ledger;
  const std::string ledger_uri = absl::GetFlag(FLAGS_usage_ledger);
  {
    absl::StatusOr<std::unique_ptr<ledger::LedgerStore>> store =
        ledger::OpenLedgerStore(ledger_uri);
    if (!store.ok()) Fail(std::string(store.status().message()));
    if (*store != nullptr) {
      // Before the ledger's writer owns the store: today's per-tenant totals
      // back into the day budgets.
      absl::StatusOr<RestoredUsage> restored = RestoreDailyUsage(**store, limiter, absl::Now());
      if (restored.ok()) {
        Log(absl::StrFormat("usage ledger: restored today's tokens of %d tenants (%d tokens) "
                            "into the per-day limits", restored->tenants, restored->tokens));
      } else {
        Log(absl::StrCat("usage ledger: per-day limits start from zero: cannot read today's "
                         "usage: ", restored.status().message()));
      }
      ledger::UsageLedgerOptions ledger_options;
      ledger_options.spill_path = absl::GetFlag(FLAGS_usage_ledger_spill);
      if (ledger_options.spill_path.empty()) {
        ledger_options.spill_path = absl::StartsWith(ledger_uri, "sqlite:")
                                        ? ledger_uri.substr(7) + ".spill"
                                        : "phi3-usage-ledger.spill";
      }
      ledger_options.log = [](absl::string_view m) { Log(absl::StrCat("usage ledger: ", m)); };
      usage_ledger = std::make_unique<ledger::UsageLedger>(*std::move(store), ledger_options);
    }
  }
  auto ledger_metrics =
      usage_ledger ? std::make_shared<LedgerMetrics>(usage_ledger.get()) : nullptr;
  if (exposer && ledger_metrics) exposer->RegisterCollectable(ledger_metrics);

  limits.context_size = info.context_size;
  limits.vocab_size = info.vocab_size;
  ServiceOptions service_options;
  service_options.usage_ledger = usage_ledger.get();
  service_options.limits = limits;
  service_options.limits.max_prompt_bytes = absl::GetFlag(FLAGS_max_prompt_bytes);
  service_options.max_buffered_tokens = absl::GetFlag(FLAGS_max_buffered_tokens);
  service_options.stream_idle_timeout = absl::GetFlag(FLAGS_stream_idle_timeout);
  service_options.isolate_tenants = absl::GetFlag(FLAGS_isolate_tenants);
  if (!service_options.isolate_tenants) {
    Log("warning: --isolate-tenants=false: all tenants share one prefix cache and can learn "
        "each other's prompts");
  }
  service_options.limiter = &limiter;
  service_options.engine_options = engine_options;
  service_options.server_version = ProjectVersion();
  service_options.server_revision = GitRevision();
  GenerationService core(engine.get(), &auth, metrics.get(), service_options);
  Phi3Service service(&core);

  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!tls_cert.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back(
        {ReadFileOrDie(tls_key, "--tls-key"), ReadFileOrDie(tls_cert, "--tls-cert")});
    credentials = grpc::SslServerCredentials(ssl);
  }
  grpc::EnableDefaultHealthCheckService(true);
  const std::string listen = absl::GetFlag(FLAGS_listen);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, credentials, &port);
  // Without this a second server silently shares a taken port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&service);
  // Our own reflection service, behind the same API keys as Phi3 (the
  // grpc++_reflection plugin would answer without a key).
  ReflectionService reflection(&auth, {"phi3.v1.Phi3", "grpc.health.v1.Health"});
  if (absl::GetFlag(FLAGS_reflection)) builder.RegisterService(&reflection);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Fail(absl::StrCat("cannot listen on ", listen, ": ", WhyCannotListen(listen)));
  }
  std::unique_ptr<HttpServer> http;
  std::string http_address = "off";
  if (const std::string http_listen = absl::GetFlag(FLAGS_http_listen); !http_listen.empty()) {
    std::string model_id = absl::GetFlag(FLAGS_served_model_name);
    if (model_id.empty()) {
      model_id = model_path.substr(model_path.rfind('/') + 1);
      if (absl::EndsWith(model_id, ".gguf")) model_id.resize(model_id.size() - 5);
    }
    absl::StatusOr<std::unique_ptr<HttpServer>> started = HttpServer::Start(
        &core, {http_listen, tls_cert, tls_key, model_id, absl::GetFlag(FLAGS_http_threads)});
    if (!started.ok()) Fail(std::string(started.status().message()));
    http = *std::move(started);
    http_address = absl::StrCat(HostOf(http_listen), ":", http->port());
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(true);
  health->SetServingStatus("phi3.v1.Phi3", true);

  Log(absl::StrFormat(
      "ready grpc=%s:%d metrics=%s http=%s model=%s (%s, %s, ctx %d) auth=%s tls=%s ledger=%s",
      HostOf(listen), port, metrics_address, http_address, model_path, info.name,
      info.quantization, info.context_size, no_auth ? "off" : "on",
      tls_cert.empty() ? "off" : "on", usage_ledger ? usage_ledger->description() : "none"));

  for (;;) {
    int signal_number = 0;
    if (sigwait(&signals, &signal_number) != 0) continue;
    if (signal_number == SIGHUP) {
      if (keys == nullptr) continue;
      if (absl::Status s = keys->Reload(); s.ok()) {
        Log(absl::StrCat("reloaded ", keys->size(), " API keys from ", keys_path));
      } else {
        Log(absl::StrCat("keeping the current ", keys->size(), " API keys: ", s.message()));
      }
      continue;
    }
    break;
  }

  const absl::Duration drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  // Refuse new work before saying so: whoever reads the log line may check
  // health and send a call right away.
  const int in_flight = core.num_active();
  health->SetServingStatus(false);
  core.StartDrain();
  Log(absl::StrCat("draining ", in_flight, " streams (timeout ",
                   absl::FormatDuration(drain_timeout), ")"));
  if (!core.WaitUntilIdle(drain_timeout)) {
    Log(absl::StrCat("drain timeout: cancelling ", core.num_active(), " streams"));
    core.CancelAll();
    core.WaitUntilIdle(absl::Seconds(5));
  }
  if (http != nullptr) http->Stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  engine.reset();
  if (exposer && ledger_metrics) exposer->RemoveCollectable(ledger_metrics);
  usage_ledger.reset();  // stores (or spills) what is still queued
  Log("stopped");
  return 0;
}

}  // namespace
}  // namespace phi3::service

int main(int argc, char** argv) {
  phi3::cli::ParseCommandLine(argc, argv, phi3::service::ServerProgram());
  phi3::service::QuietGrpcLogs();
  return phi3::service::Run();
}
