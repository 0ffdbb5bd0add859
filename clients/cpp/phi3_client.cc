// phi3-client: command-line client for phi3.v1.Phi3.
//
//   phi3-client --addr HOST:PORT [--api-key KEY] [--tls [--ca-cert F]] [--route-key KEY] COMMAND
//   generate --prompt TEXT [--max-tokens N] [--temperature T] [--seed S] [--stop STR]... [--json] [--stats]
//   chat --user TEXT [--system TEXT] (same options)
//   tokenize --text TEXT [--json]
//   info [--json]
//
// Exit codes: 0 ok, 1 the call failed ("CODE: message" on stderr), 2 bad usage.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli/flags.h"
#include "clients/cpp/client_args.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "proto/phi3/v1/phi3.grpc.pb.h"

namespace phi3::client {
namespace {

constexpr char kUsage[] = R"(Usage: phi3-client [--addr HOST:PORT] [--api-key KEY] [--tls [--ca-cert FILE]
                   [--tls-server-name NAME]] [--timeout SECONDS] [--route-key KEY]
                   COMMAND [options]

Commands:
  generate --prompt TEXT   stream a completion (--no-bos, --parse-special)
  chat --user TEXT         stream a chat reply (--system TEXT; --user/--assistant
                           may repeat, in conversation order)
  tokenize --text TEXT     print token ids (--no-bos, --parse-special)
  info                     describe the model and the server's limits

Generation options: --max-tokens N --temperature T --top-k K --top-p P --min-p P
  --repetition-penalty R --presence-penalty P --frequency-penalty P --seed S
  --stop STR (repeatable) --stop-token-id ID (repeatable) --ignore-eos
  --logprobs --top-logprobs N
Output: text streams to stdout; --stats adds usage and timings on stderr;
  --json prints one JSON object after the stream instead.
--route-key KEY sends the x-phi3-route-key metadata: behind the fleet router, calls
  with the same key (a tenant, a document) go to the same replica and its prefix cache.
Defaults: --addr 127.0.0.1:50051, --api-key from $PHI3_API_KEY.
--help prints this text, --version the version of phi3-client.
Exit codes: 0 ok, 1 the call failed (gRPC code and message on stderr), 2 bad usage.
)";

[[noreturn]] void UsageError(const std::string& message) {
  std::fprintf(stderr, "phi3-client: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
      "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? kNames[i] : "UNKNOWN";
}

int Failed(const grpc::Status& status) {
  std::fprintf(stderr, "phi3-client: %s: %s\n", CodeName(status.error_code()),
               status.error_message().c_str());
  return 1;
}

using Json = nlohmann::ordered_json;  // keeps the contract's key order

// One line of JSON; invalid UTF-8 (never sent by the server) becomes U+FFFD.
void PrintJson(const Json& value) {
  std::printf("%s\n", value.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
}

std::string FinishName(v1::FinishReason reason) {
  std::string name = v1::FinishReason_Name(reason);
  constexpr absl::string_view kPrefix = "FINISH_REASON_";
  return name.rfind(kPrefix.data(), 0) == 0 ? name.substr(kPrefix.size()) : name;
}

template <typename T>
T Number(const ClientArgs& args, const std::string& name, T fallback) {
  if (!args.Has(name)) return fallback;
  const std::string text = args.Get(name);
  T value;
  bool ok;
  if constexpr (std::is_same_v<T, float>) {
    ok = absl::SimpleAtof(text, &value);
  } else {
    ok = absl::SimpleAtoi(text, &value);
  }
  if (!ok) UsageError(absl::StrCat("--", name, " needs a number, got '", text, "'"));
  return value;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) UsageError("cannot read " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void FillOptions(const ClientArgs& args, v1::SamplingOptions* s, v1::StopOptions* stop) {
  if (args.Has("temperature")) s->set_temperature(Number<float>(args, "temperature", 1));
  s->set_top_k(Number<int32_t>(args, "top-k", 0));
  if (args.Has("top-p")) s->set_top_p(Number<float>(args, "top-p", 1));
  s->set_min_p(Number<float>(args, "min-p", 0));
  if (args.Has("repetition-penalty")) {
    s->set_repetition_penalty(Number<float>(args, "repetition-penalty", 1));
  }
  s->set_presence_penalty(Number<float>(args, "presence-penalty", 0));
  s->set_frequency_penalty(Number<float>(args, "frequency-penalty", 0));
  s->set_seed(Number<uint64_t>(args, "seed", 0));
  s->set_logprobs(args.Has("logprobs"));
  s->set_top_logprobs(Number<int32_t>(args, "top-logprobs", 0));
  stop->set_max_tokens(Number<int32_t>(args, "max-tokens", 0));
  for (const std::string& text : args.GetAll("stop")) stop->add_stop(text);
  for (const std::string& id : args.GetAll("stop-token-id")) {
    int32_t value;
    if (!absl::SimpleAtoi(id, &value)) UsageError("--stop-token-id needs an integer, got " + id);
    stop->add_stop_token_ids(value);
  }
  stop->set_ignore_eos(args.Has("ignore-eos"));
}

void SetUpContext(const ClientArgs& args, grpc::ClientContext* context) {
  std::string key = args.Get("api-key");
  if (key.empty()) {
    if (const char* env = std::getenv("PHI3_API_KEY")) key = env;
  }
  if (!key.empty()) context->AddMetadata("authorization", "Bearer " + key);
  // Read by the fleet router (deploy/router), which sends calls with the same
  // key to the same replica so that their shared prompt prefix stays cached.
  if (args.Has("route-key")) context->AddMetadata("x-phi3-route-key", args.Get("route-key"));
  if (args.Has("timeout")) {
    const float seconds = Number<float>(args, "timeout", 0);
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  }
}

int Stream(const ClientArgs& args, std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader) {
  const bool json = args.Has("json");
  std::string text;
  std::vector<int32_t> tokens;
  v1::GenerateResponse message, last;
  while (reader->Read(&message)) {
    text += message.text();
    tokens.insert(tokens.end(), message.token_ids().begin(), message.token_ids().end());
    if (!json) {
      std::fwrite(message.text().data(), 1, message.text().size(), stdout);
      std::fflush(stdout);
      for (const v1::TokenLogprobs& lp : message.logprobs()) {
        std::string line = absl::StrFormat("[token %d logprob %.4f", lp.token_id(), lp.logprob());
        for (const v1::TokenLogprob& t : lp.top()) {
          absl::StrAppendFormat(&line, " %d:%.4f", t.token_id(), t.logprob());
        }
        std::fprintf(stderr, "%s]\n", line.c_str());
      }
    }
    if (message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) last = message;
  }
  const grpc::Status status = reader->Finish();
  if (!json && !text.empty() && text.back() != '\n') std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!status.ok()) return Failed(status);
  const v1::Usage& u = last.usage();
  const v1::Timings& t = last.timings();
  if (json) {
    Json out;
    out["text"] = text;
    out["completion_tokens"] = tokens;
    out["finish_reason"] = FinishName(last.finish_reason());
    out["usage"] = {{"prompt_tokens", u.prompt_tokens()},
                    {"cached_prompt_tokens", u.cached_prompt_tokens()},
                    {"completion_tokens", u.completion_tokens()}};
    out["cost_usd"] = last.cost_usd();
    out["timings"] = {{"queue_ms", t.queue_ms()}, {"ttft_ms", t.ttft_ms()}, {"total_ms", t.total_ms()}};
    PrintJson(out);
  } else if (args.Has("stats")) {
    const double decode_ms = t.total_ms() - t.ttft_ms();
    std::fprintf(stderr,
                 "finish_reason=%s prompt_tokens=%d cached_prompt_tokens=%d "
                 "completion_tokens=%d cost_usd=%.10g queue_ms=%.1f ttft_ms=%.1f total_ms=%.1f "
                 "decode_tokens_per_s=%.1f\n",
                 FinishName(last.finish_reason()).c_str(), u.prompt_tokens(),
                 u.cached_prompt_tokens(), u.completion_tokens(), last.cost_usd(), t.queue_ms(),
                 t.ttft_ms(), t.total_ms(),
                 u.completion_tokens() > 1 && decode_ms > 0
                     ? (u.completion_tokens() - 1) * 1000.0 / decode_ms
                     : 0.0);
  }
  return 0;
}

int Generate(const ClientArgs& args, v1::Phi3::Stub& stub) {
  v1::GenerateRequest request;
  if (args.Has("prompt-tokens")) {
    for (absl::string_view id : absl::StrSplit(args.Get("prompt-tokens"), ',', absl::SkipEmpty())) {
      int32_t value;
      if (!absl::SimpleAtoi(id, &value)) UsageError("--prompt-tokens needs comma-separated ids");
      request.add_prompt_tokens(value);
    }
  } else if (!args.Has("prompt")) {
    UsageError("generate needs --prompt TEXT");
  }
  request.set_prompt(args.Get("prompt"));
  if (args.Has("no-bos")) request.set_add_special(false);
  request.set_parse_special(args.Has("parse-special"));
  FillOptions(args, request.mutable_sampling(), request.mutable_stop());
  grpc::ClientContext context;
  SetUpContext(args, &context);
  return Stream(args, stub.Generate(&context, request));
}

int Chat(const ClientArgs& args, v1::Phi3::Stub& stub) {
  v1::ChatRequest request;
  for (const auto& [name, value] : args.ordered) {
    v1::ChatMessage::Role role;
    if (name == "system") {
      role = v1::ChatMessage::ROLE_SYSTEM;
    } else if (name == "user") {
      role = v1::ChatMessage::ROLE_USER;
    } else if (name == "assistant") {
      role = v1::ChatMessage::ROLE_ASSISTANT;
    } else {
      continue;
    }
    v1::ChatMessage* message = request.add_messages();
    message->set_role(role);
    message->set_content(value);
  }
  if (!args.Has("user")) UsageError("chat needs --user TEXT");
  FillOptions(args, request.mutable_sampling(), request.mutable_stop());
  grpc::ClientContext context;
  SetUpContext(args, &context);
  return Stream(args, stub.Chat(&context, request));
}

int Tokenize(const ClientArgs& args, v1::Phi3::Stub& stub) {
  if (!args.Has("text") && !args.Has("prompt")) UsageError("tokenize needs --text TEXT");
  v1::TokenizeRequest request;
  request.set_text(args.Has("text") ? args.Get("text") : args.Get("prompt"));
  if (args.Has("no-bos")) request.set_add_special(false);
  request.set_parse_special(args.Has("parse-special"));
  v1::TokenizeResponse response;
  grpc::ClientContext context;
  SetUpContext(args, &context);
  const grpc::Status status = stub.Tokenize(&context, request, &response);
  if (!status.ok()) return Failed(status);
  if (args.Has("json")) {
    Json out;
    out["token_ids"] = std::vector<int32_t>(response.token_ids().begin(), response.token_ids().end());
    out["num_tokens"] = response.num_tokens();
    PrintJson(out);
  } else {
    std::string line;
    for (int32_t id : response.token_ids()) absl::StrAppend(&line, line.empty() ? "" : " ", id);
    std::printf("%s\n", line.c_str());
    if (args.Has("stats")) std::fprintf(stderr, "num_tokens=%d\n", response.num_tokens());
  }
  return 0;
}

int Info(const ClientArgs& args, v1::Phi3::Stub& stub) {
  v1::GetModelInfoResponse r;
  grpc::ClientContext context;
  SetUpContext(args, &context);
  const grpc::Status status = stub.GetModelInfo(&context, {}, &r);
  if (!status.ok()) return Failed(status);
  const v1::EngineLimits& l = r.limits();
  if (args.Has("json")) {
    Json out;
    out["name"] = r.name();
    out["architecture"] = r.architecture();
    out["context_length"] = r.context_length();
    out["context_size"] = l.context_size();
    out["vocab_size"] = r.vocab_size();
    out["quantization"] = r.quantization();
    out["file_sha256"] = r.file_sha256();
    out["parameter_count"] = r.parameter_count();
    out["num_layers"] = r.num_layers();
    out["embedding_size"] = r.embedding_size();
    out["max_running_sequences"] = l.max_running_sequences();
    out["max_batched_tokens"] = l.max_batched_tokens();
    out["max_waiting_requests"] = l.max_waiting_requests();
    out["kv_block_size"] = l.kv_block_size();
    out["prices_usd_per_million"] = {{"input", r.prices().input_usd_per_million()},
                                     {"cached_input", r.prices().cached_input_usd_per_million()},
                                     {"output", r.prices().output_usd_per_million()}};
    out["server_version"] = r.server_version();
    out["server_revision"] = r.server_revision();
    PrintJson(out);
    return 0;
  }
  std::printf(
      "model:          %s (%s)\nquantization:   %s\nparameters:     %lld\nlayers:         %d\n"
      "embedding:      %d\nvocab:          %d\ncontext:        %d (trained %d)\n"
      "sha256:         %s\nlimits:         %d running, %d tokens/step, %d waiting, "
      "KV blocks of %d\nprices (USD/M): input %g, cached input %g, output %g\n"
      "server:         %s (git %s)\n",
      r.name().c_str(), r.architecture().c_str(), r.quantization().c_str(),
      static_cast<long long>(r.parameter_count()), r.num_layers(), r.embedding_size(),
      r.vocab_size(), l.context_size(), r.context_length(), r.file_sha256().c_str(),
      l.max_running_sequences(), l.max_batched_tokens(), l.max_waiting_requests(),
      l.kv_block_size(), r.prices().input_usd_per_million(),
      r.prices().cached_input_usd_per_million(), r.prices().output_usd_per_million(),
      r.server_version().c_str(), r.server_revision().c_str());
  return 0;
}

int Main(int argc, char** argv) {
  cli::ExitIfVersionRequested(argc, argv, "phi3-client");
  absl::StatusOr<ClientArgs> parsed = ParseClientArgs(argc, argv);
  if (!parsed.ok()) UsageError(std::string(parsed.status().message()));
  const ClientArgs& args = *parsed;
  if (args.Has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (args.command.empty()) UsageError("missing command");
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments channel_args;
  if (args.Has("tls") || args.Has("ca-cert")) {
    grpc::SslCredentialsOptions ssl;
    if (args.Has("ca-cert")) ssl.pem_root_certs = ReadFile(args.Get("ca-cert"));
    credentials = grpc::SslCredentials(ssl);
    if (args.Has("tls-server-name")) {
      channel_args.SetSslTargetNameOverride(args.Get("tls-server-name"));
    }
  }
  auto channel = grpc::CreateCustomChannel(args.Get("addr", "127.0.0.1:50051"), credentials,
                                           channel_args);
  auto stub = v1::Phi3::NewStub(channel);
  if (args.command == "generate") return Generate(args, *stub);
  if (args.command == "chat") return Chat(args, *stub);
  if (args.command == "tokenize") return Tokenize(args, *stub);
  if (args.command == "info") return Info(args, *stub);
  UsageError("unknown command '" + args.command + "'");
}

}  // namespace
}  // namespace phi3::client

int main(int argc, char** argv) { return phi3::client::Main(argc, argv); }
