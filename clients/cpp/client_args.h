// Command-line parsing for phi3-client (hand-written: the contract needs
// repeatable flags such as --stop and flags before and after the command).
#ifndef PHI3_CLIENTS_CPP_CLIENT_ARGS_H_
#define PHI3_CLIENTS_CPP_CLIENT_ARGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace phi3::client {

struct ClientArgs {
  std::string command;  // generate | chat | tokenize | info
  // Every --name value / --name=value / boolean --name, in order; a name may repeat.
  std::multimap<std::string, std::string> flags;
  std::vector<std::pair<std::string, std::string>> ordered;  // same, in command-line order

  bool Has(const std::string& name) const { return flags.count(name) > 0; }
  // The last value of --name, or `fallback`.
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> GetAll(const std::string& name) const;
};

// Boolean flags take no value; all others take exactly one. Unknown flags
// and missing values are InvalidArgument.
absl::StatusOr<ClientArgs> ParseClientArgs(int argc, char** argv);

}  // namespace phi3::client

#endif  // PHI3_CLIENTS_CPP_CLIENT_ARGS_H_
