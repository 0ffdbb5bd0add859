// phi3-run: generate from a Phi-3 GGUF file on the command line (like
// llama-cli), through the same Engine the server uses.
//
//   phi3-run --model FILE --prompt TEXT [--parse-special] [--chat] [--system TEXT]
//            [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
//            [--threads N] [--ctx N] [--json]
//
// Tokenization defaults to llama.cpp's add_special=true, parse_special=false.
// --temperature 0 is greedy; --max-tokens 0 only tokenizes. Sampling flags
// take the engine's ranges (engine/engine.h), as the gRPC API does. Text streams to
// stdout as it is generated; --json prints one object at the end:
//   {"prompt_tokens":[...],"completion_tokens":[...],"text":"..."}
// Bad input (flags, model file, prompt too long): message on stderr, exit 2.
//
// Extras for tests and tools: --prompt-tokens "1,2,3" (ids instead of text),
// --prompt-tokens-file FILE (one comma-separated id list per line, all
// submitted at once so the Engine batches them; with --json one output line
// per prompt, in file order), --ignore-eos, --kv-type f16|q8_0,
// --dump-logits FILE (the next-token logits after each prompt, vocab_size
// little-endian f32 per prompt, computed by the model directly).
#include <cstdio>
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "cli/flags.h"
#include "cli/progress.h"
#include "engine/engine.h"
#include "engine/model/phi3_model.h"
#include "engine/tokenizer/detokenizer.h"
#include "nlohmann/json.hpp"

namespace phi3 {
namespace {

// Flags; names accept '-' or '_' ("--max-tokens" == "--max_tokens").
struct Flags {
  std::string model, prompt, prompt_tokens, prompt_tokens_file, system, kv_type = "f16",
      dump_logits;
  bool parse_special = false, chat = false, json = false, ignore_eos = false, timings = false;
  int max_tokens = 256, top_k = 40, threads = 0, ctx = 0;
  double temperature = 0.8, top_p = 0.95;
  uint64_t seed = 0;
};

constexpr char kUsage[] =
    "usage: phi3-run --model FILE --prompt TEXT [--parse-special] [--chat] [--system TEXT]\n"
    "                [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
    "                [--threads N] [--ctx N] [--json]\n"
    "  --prompt-tokens IDS  comma-separated prompt token ids instead of --prompt\n"
    "  --prompt-tokens-file FILE  one id list per line, generated as one batch\n"
    "  --ignore-eos         keep generating past end-of-generation tokens\n"
    "  --kv-type f16|q8_0   KV cache type (default f16)\n"
    "  --dump-logits FILE   write the next-token logits after each prompt (f32)\n"
    "  --timings            print prompt and decode speed to stderr\n"
    "  --version            print the version and exit\n"
    "defaults: --max-tokens 256 --temperature 0.8 --top-k 40 --top-p 0.95 --seed 0\n"
    "          --threads 0 (all cores) --ctx 0 (min(4096, the model's context))\n";

// Returns "" or an error message.
std::string ParseFlags(int argc, char** argv, Flags& f, bool& help) {
  struct Spec {
    const char* name;
    enum { kString, kBool, kInt, kDouble, kUint64 } kind;
    void* target;
  };
  const Spec specs[] = {
      {"model", Spec::kString, &f.model},
      {"prompt", Spec::kString, &f.prompt},
      {"prompt_tokens", Spec::kString, &f.prompt_tokens},
      {"prompt_tokens_file", Spec::kString, &f.prompt_tokens_file},
      {"system", Spec::kString, &f.system},
      {"kv_type", Spec::kString, &f.kv_type},
      {"dump_logits", Spec::kString, &f.dump_logits},
      {"parse_special", Spec::kBool, &f.parse_special},
      {"chat", Spec::kBool, &f.chat},
      {"json", Spec::kBool, &f.json},
      {"ignore_eos", Spec::kBool, &f.ignore_eos},
      {"timings", Spec::kBool, &f.timings},
      {"max_tokens", Spec::kInt, &f.max_tokens},
      {"top_k", Spec::kInt, &f.top_k},
      {"threads", Spec::kInt, &f.threads},
      {"ctx", Spec::kInt, &f.ctx},
      {"temperature", Spec::kDouble, &f.temperature},
      {"top_p", Spec::kDouble, &f.top_p},
      {"seed", Spec::kUint64, &f.seed},
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help = true;
      return "";
    }
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      return absl::StrCat("unexpected argument \"", arg, "\"");
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    for (char& c : name) c = c == '-' ? '_' : c;
    const Spec* spec = nullptr;
    for (const Spec& s : specs) {
      if (name == s.name) spec = &s;
    }
    if (spec == nullptr) return absl::StrCat("unknown flag --", name);
    if (spec->kind == Spec::kBool) {
      bool b = true;
      if (value.has_value() && !absl::SimpleAtob(*value, &b)) {
        return absl::StrCat("--", name, ": \"", *value, "\" is not a boolean");
      }
      *static_cast<bool*>(spec->target) = b;
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= argc) return absl::StrCat("--", name, " needs a value");
      value = argv[++i];
    }
    bool ok = true;
    switch (spec->kind) {
      case Spec::kString: *static_cast<std::string*>(spec->target) = *value; break;
      case Spec::kInt: ok = absl::SimpleAtoi(*value, static_cast<int*>(spec->target)); break;
      case Spec::kUint64: ok = absl::SimpleAtoi(*value, static_cast<uint64_t*>(spec->target)); break;
      case Spec::kDouble: ok = absl::SimpleAtod(*value, static_cast<double*>(spec->target)); break;
      case Spec::kBool: break;
    }
    if (!ok) return absl::StrCat("--", name, ": \"", *value, "\" is not a valid number");
  }
  return "";
}

constexpr int kExitBadInput = 2;
constexpr int kExitFailure = 1;

// The --json line: {"prompt_tokens":[...],"completion_tokens":[...],"text":"..."}
// (the CLI contract's key order). Text is made valid UTF-8 first (U+FFFD).
std::string JsonResult(const std::vector<int32_t>& prompt, const std::vector<int32_t>& completion,
                       std::string_view text) {
  nlohmann::ordered_json out;
  out["prompt_tokens"] = prompt;
  out["completion_tokens"] = completion;
  out["text"] = ReplaceInvalidUtf8(text);
  return out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// Collects a request's output; streams text when asked.
class RunSink : public TokenSink {
 public:
  explicit RunSink(bool stream) : stream_(stream) {}
  bool OnToken(const TokenEvent& event) override {
    tokens_.push_back(event.token_id);
    text_ += event.text_delta;
    if (stream_ && !event.text_delta.empty()) {
      std::fwrite(event.text_delta.data(), 1, event.text_delta.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  }
  void OnFinish(const FinishEvent& event) override {
    text_ += event.text_tail;
    if (stream_ && !event.text_tail.empty()) {
      std::fwrite(event.text_tail.data(), 1, event.text_tail.size(), stdout);
    }
    finish_ = event;
    done_.Notify();
  }
  void Wait() { done_.WaitForNotification(); }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const std::string& text() const { return text_; }
  const FinishEvent& finish() const { return finish_; }

 private:
  const bool stream_;
  std::vector<int32_t> tokens_;
  std::string text_;
  FinishEvent finish_;
  absl::Notification done_;
};

int Fail(int code, const absl::Status& status) {
  std::fprintf(stderr, "phi3-run: %s\n", status.ToString().c_str());
  return code;
}
int BadInput(const std::string& message) {
  std::fprintf(stderr, "phi3-run: %s\n", message.c_str());
  return kExitBadInput;
}

absl::Status DumpLogits(const EngineOptions& eo, const std::vector<std::vector<int32_t>>& prompts,
                        const std::string& path) {
  ModelOptions mo;
  mo.num_threads = eo.num_threads;
  mo.context_size = eo.context_size;
  mo.progress = eo.load_progress;
  absl::StatusOr<std::unique_ptr<Phi3Model>> model = Phi3Model::Open(eo.model_path, mo);
  if (!model.ok()) return model.status();
  constexpr int kBlock = 16;
  size_t longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, p.size());
  const int blocks = (static_cast<int>(longest) + kBlock - 1) / kBlock;
  if (absl::Status s = (*model)->InitKvCache(blocks, kBlock, eo.kv_cache_type); !s.ok()) return s;
  std::vector<int32_t> table(blocks);
  for (int i = 0; i < blocks; ++i) table[i] = i;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot write ", path));
  std::vector<float> logits((*model)->vocab_size());
  for (const auto& prompt : prompts) {
    ForwardBatch batch;
    batch.sequences.push_back({prompt, 0, table, true});
    if (absl::Status s = (*model)->Forward(batch, logits); !s.ok()) {
      std::fclose(f);
      return s;
    }
    if (std::fwrite(logits.data(), sizeof(float), logits.size(), f) != logits.size()) {
      std::fclose(f);
      return absl::DataLossError(absl::StrCat("short write to ", path));
    }
  }
  std::fclose(f);
  return absl::OkStatus();
}

// Parses "1,2,3" into ids in [0, vocab); "" on success, else a message.
std::string ParseIds(absl::string_view text, int vocab, std::vector<int32_t>& ids) {
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(piece, &id) || id < 0 || id >= vocab) {
      return absl::StrCat("\"", piece, "\" is not a token id in [0, ", vocab, ")");
    }
    ids.push_back(id);
  }
  return "";
}

int Run(const Flags& flags) {
  const std::string model_path = flags.model;
  if (model_path.empty()) return BadInput("--model FILE is required");
  const std::string prompt = flags.prompt;
  const std::string prompt_ids = flags.prompt_tokens;
  if (!prompt.empty() + !prompt_ids.empty() + !flags.prompt_tokens_file.empty() > 1) {
    return BadInput("give only one of --prompt, --prompt-tokens, --prompt-tokens-file");
  }
  const bool batch = !flags.prompt_tokens_file.empty();
  if (batch && !flags.json) return BadInput("--prompt-tokens-file needs --json");
  const int max_tokens = flags.max_tokens;
  if (max_tokens < 0) return BadInput(absl::StrCat("--max-tokens ", max_tokens, " must be >= 0"));
  // The engine's ranges (engine.h), checked before loading the model.
  SamplingParams sampling;
  sampling.temperature = static_cast<float>(flags.temperature);
  sampling.top_k = flags.top_k;
  sampling.top_p = static_cast<float>(flags.top_p);
  sampling.seed = flags.seed;
  if (absl::Status s = ValidateSamplingParams(sampling); !s.ok()) return Fail(kExitBadInput, s);
  if (flags.threads < 0) return BadInput("--threads must be >= 0");
  if (flags.ctx < 0) return BadInput("--ctx must be >= 0");
  const std::string kv_type = flags.kv_type;
  if (kv_type != "f16" && kv_type != "q8_0") return BadInput("--kv-type must be f16 or q8_0");
  if (!flags.system.empty() && !flags.chat) {
    return BadInput("--system needs --chat");
  }
  if (flags.chat && (!prompt_ids.empty() || batch)) {
    return BadInput("--chat applies to --prompt text, not to token ids");
  }
  std::string batch_text;
  if (batch) {
    FILE* f = std::fopen(flags.prompt_tokens_file.c_str(), "rb");
    if (f == nullptr) return BadInput("cannot read --prompt-tokens-file " + flags.prompt_tokens_file);
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) batch_text.append(buf, n);
    std::fclose(f);
  }

  EngineOptions eo;
  eo.model_path = model_path;
  eo.num_threads = flags.threads;
  eo.context_size = flags.ctx;
  eo.kv_cache_type = kv_type == "q8_0" ? KvCacheType::kQ8_0 : KvCacheType::kF16;
  if (!batch) eo.max_running_sequences = 1;
  eo.prefix_cache = false;
  // Outlives the engine, which reports to it while hashing.
  cli::Progress progress("phi3-run");
  eo.load_progress = progress.Callback();
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(eo);
  if (!engine.ok()) {
    progress.EndLine();
    return Fail(kExitBadInput, engine.status());
  }
  Engine& e = **engine;
  const ModelInfo& info = e.Info();  // waits for the SHA-256
  progress.EndLine();

  std::vector<std::vector<int32_t>> prompts;
  if (batch) {
    for (absl::string_view line : absl::StrSplit(batch_text, '\n', absl::SkipWhitespace())) {
      prompts.emplace_back();
      if (std::string error = ParseIds(line, info.vocab_size, prompts.back()); !error.empty()) {
        return BadInput(absl::StrCat("--prompt-tokens-file line ", prompts.size(), ": ", error));
      }
    }
    if (prompts.empty()) return BadInput("--prompt-tokens-file has no prompts");
  } else if (!prompt_ids.empty()) {
    prompts.emplace_back();
    if (std::string error = ParseIds(prompt_ids, info.vocab_size, prompts.back());
        !error.empty()) {
      return BadInput("--prompt-tokens: " + error);
    }
  } else if (flags.chat) {
    std::vector<ChatMessage> messages;
    if (!flags.system.empty()) {
      messages.push_back({ChatMessage::Role::kSystem, flags.system});
    }
    messages.push_back({ChatMessage::Role::kUser, prompt});
    absl::StatusOr<std::vector<int32_t>> chat = e.ApplyChatTemplate(messages);
    if (!chat.ok()) return Fail(kExitBadInput, chat.status());
    prompts.push_back(*std::move(chat));
  } else {
    prompts.push_back(e.Tokenize(prompt, /*add_special=*/true, flags.parse_special));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) return BadInput("the prompt is empty (no tokens)");
    if (static_cast<int>(prompts[i].size()) >= info.context_size && max_tokens > 0) {
      return BadInput(absl::StrCat("the prompt has ", prompts[i].size(),
                                   " tokens, it must be shorter than the context (",
                                   info.context_size, ")"));
    }
  }
  if (const std::string path = flags.dump_logits; !path.empty()) {
    eo.context_size = info.context_size;
    if (absl::Status s = DumpLogits(eo, prompts, path); !s.ok()) return Fail(kExitFailure, s);
  }

  const bool json = flags.json;
  std::vector<std::shared_ptr<RunSink>> sinks;
  for (size_t i = 0; i < prompts.size(); ++i) {
    sinks.push_back(std::make_shared<RunSink>(/*stream=*/!json));
  }
  if (max_tokens > 0) {
    for (size_t i = 0; i < prompts.size(); ++i) {
      GenerateRequest request;
      request.prompt_tokens = prompts[i];
      request.sampling = sampling;
      request.stop.max_tokens =
          std::min(max_tokens, info.context_size - static_cast<int>(prompts[i].size()));
      request.stop.ignore_eos = flags.ignore_eos;
      absl::StatusOr<RequestId> id = e.Submit(std::move(request), sinks[i]);
      if (!id.ok()) return Fail(kExitBadInput, id.status());
    }
    for (const auto& sink : sinks) {
      sink->Wait();
      if (sink->finish().reason == FinishReason::kError) {
        return Fail(kExitFailure, sink->finish().status);
      }
      if (flags.timings) {
        const FinishEvent& f = sink->finish();
        const double ttft = absl::ToDoubleSeconds(f.timings.time_to_first_token);
        const double decode = absl::ToDoubleSeconds(f.timings.total) - ttft;
        const int n = f.usage.completion_tokens;
        std::fprintf(stderr,
                     "phi3-run: prompt %d tokens, first token after %.3f s; %d more tokens in "
                     "%.3f s (%.2f tokens/s)\n",
                     f.usage.prompt_tokens, ttft, n - 1, decode,
                     n > 1 && decode > 0 ? (n - 1) / decode : 0.0);
      }
    }
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (json) {
      std::printf("%s\n", JsonResult(prompts[i], sinks[i]->tokens(), sinks[i]->text()).c_str());
    } else if (max_tokens == 0) {
      std::printf("%s\n", absl::StrJoin(prompts[i], " ").c_str());
    } else {
      std::printf("\n");
    }
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace phi3

int main(int argc, char** argv) {
  phi3::cli::ExitIfVersionRequested(argc, argv, "phi3-run");
  phi3::Flags flags;
  bool help = false;
  if (std::string error = phi3::ParseFlags(argc, argv, flags, help); !error.empty()) {
    std::fprintf(stderr, "phi3-run: %s\n%s", error.c_str(), phi3::kUsage);
    return phi3::kExitBadInput;
  }
  if (help) {
    std::printf("%s", phi3::kUsage);
    return 0;
  }
  return phi3::Run(flags);
}
