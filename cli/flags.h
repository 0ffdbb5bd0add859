// Command lines of the phi3serve programs (absl flags underneath): grouped
// help with defaults and examples, --version, dashed flag names, and flags
// taken from PHI3_* environment variables.
//
// Environment: flag `foo_bar` (written --foo-bar) is also read from
// PHI3_FOO_BAR when the command line does not give it; the command line wins.
#ifndef PHI3_CLI_FLAGS_H_
#define PHI3_CLI_FLAGS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"

namespace phi3::cli {

struct FlagGroup {
  std::string title;  // "Network"
  // absl flag names, each optionally with the placeholder of its value:
  // "listen=HOST:PORT", "model=FILE", "no_auth".
  std::vector<std::string> flags;
};

struct ProgramInfo {
  std::string name;      // "phi3-server"
  std::string summary;   // one line: what the program does
  std::string usage;     // "phi3-server --model FILE.gguf [options]"
  std::vector<FlagGroup> groups;
  std::string examples;  // lines printed as given, under "Examples:"
  std::string notes;     // printed last (signals, output, exit status)
  bool environment = false;  // read PHI3_* variables
};

// Parses the command line. --help/-h prints Help(info) on stdout and exits
// 0; --version prints VersionLine(info.name) and exits 0. Dashes in flag
// names become underscores. With info.environment, PHI3_* variables set the
// flags of the program (as Help lists them) the command line does not give. Returns the
// positional arguments, argv[0] first.
std::vector<char*> ParseCommandLine(int argc, char** argv, const ProgramInfo& info);

// For programs with their own parsers: when an argument before "--" is
// --version, prints VersionLine(program) on stdout and exits 0.
void ExitIfVersionRequested(int argc, char** argv, std::string_view program);

// The --help text. Flags defined in the same source file as the first
// grouped flag but in no group are listed under "Other", so none is hidden.
std::string Help(const ProgramInfo& info);

// "PHI3_FOO_BAR" for flag "foo_bar".
std::string EnvironmentName(absl::string_view flag);

}  // namespace phi3::cli

#endif  // PHI3_CLI_FLAGS_H_
