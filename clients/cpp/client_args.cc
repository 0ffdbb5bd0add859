#include "clients/cpp/client_args.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace phi3::client {
namespace {

const std::set<std::string>& BoolFlags() {
  static const auto* flags = new std::set<std::string>{
      "tls", "json", "stats", "ignore-eos", "logprobs", "parse-special", "no-bos", "help"};
  return *flags;
}

const std::set<std::string>& ValueFlags() {
  static const auto* flags = new std::set<std::string>{
      "addr", "api-key", "route-key", "ca-cert", "tls-server-name", "timeout", "prompt", "text",
      "max-tokens", "temperature", "top-k", "top-p", "min-p", "repetition-penalty",
      "presence-penalty", "frequency-penalty", "seed", "stop", "stop-token-id",
      "top-logprobs", "user", "system", "assistant", "prompt-tokens"};
  return *flags;
}

}  // namespace

std::string ClientArgs::Get(const std::string& name, const std::string& fallback) const {
  std::string value = fallback;
  auto [begin, end] = flags.equal_range(name);
  for (auto it = begin; it != end; ++it) value = it->second;
  return value;
}

std::vector<std::string> ClientArgs::GetAll(const std::string& name) const {
  std::vector<std::string> values;
  for (const auto& [key, value] : ordered) {
    if (key == name) values.push_back(value);
  }
  return values;
}

absl::StatusOr<ClientArgs> ParseClientArgs(int argc, char** argv) {
  ClientArgs args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!absl::StartsWith(arg, "--")) {
      if (!args.command.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unexpected argument '", arg, "' after command ", args.command));
      }
      args.command = arg;
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (BoolFlags().count(name)) {
      if (has_value && value != "true" && value != "false") {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      }
      if (!has_value || value == "true") {
        args.flags.emplace(name, "true");
        args.ordered.emplace_back(name, "true");
      }
      continue;
    }
    if (!ValueFlags().count(name)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!has_value) {
      if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      value = argv[++i];
    }
    args.flags.emplace(name, value);
    args.ordered.emplace_back(name, value);
  }
  return args;
}

}  // namespace phi3::client
