#include "cli/flags.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "cli/version.h"

namespace phi3::cli {
namespace {

struct FlagSpec {
  std::string name;         // absl name, snake_case
  std::string placeholder;  // "FILE", or empty
};

FlagSpec SpecOf(const std::string& entry) {
  std::pair<std::string, std::string> parts = absl::StrSplit(entry, absl::MaxSplits('=', 1));
  return {parts.first, parts.second};
}

std::string Dashed(absl::string_view name) { return absl::StrReplaceAll(name, {{"_", "-"}}); }

// Wraps `text` at `width` columns, each line starting with `indent`.
std::string Wrap(absl::string_view text, absl::string_view indent, size_t width) {
  std::string out, line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() && indent.size() + line.size() + 1 + word.size() > width) {
      absl::StrAppend(&out, indent, line, "\n");
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
  }
  if (!line.empty()) absl::StrAppend(&out, indent, line, "\n");
  return out;
}

// Flag arguments with their names' dashes turned into underscores.
std::vector<std::string> Undash(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;
    if (a.rfind("--", 0) != 0) continue;
    const size_t end = std::min(a.find('='), a.size());
    for (size_t j = 2; j < end; ++j) {
      if (a[j] == '-') a[j] = '_';
    }
  }
  return args;
}

// The groups of `info` plus "Other" for the ungrouped flags of its file.
std::vector<FlagGroup> AllGroups(const ProgramInfo& info) {
  std::vector<FlagGroup> groups = info.groups;
  if (groups.empty() || groups[0].flags.empty()) return groups;
  const absl::CommandLineFlag* first = absl::FindCommandLineFlag(SpecOf(groups[0].flags[0]).name);
  if (first == nullptr) return groups;
  std::set<std::string> grouped;
  for (const FlagGroup& group : groups) {
    for (const std::string& entry : group.flags) grouped.insert(SpecOf(entry).name);
  }
  FlagGroup other{"Other", {}};
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->Filename() == first->Filename() && !grouped.count(std::string(name))) {
      other.flags.emplace_back(name);
    }
  }
  std::sort(other.flags.begin(), other.flags.end());
  if (!other.flags.empty()) groups.push_back(std::move(other));
  return groups;
}

bool Given(const std::vector<std::string>& args, const std::string& name) {
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    const std::string& a = args[i];
    for (const std::string& form : {"--" + name, "--no" + name, "-" + name}) {
      if (a == form || a.rfind(form + "=", 0) == 0) return true;
    }
  }
  return false;
}

}  // namespace

std::string EnvironmentName(absl::string_view flag) {
  return absl::StrCat("PHI3_", absl::AsciiStrToUpper(flag));
}

std::string Help(const ProgramInfo& info) {
  std::string out = absl::StrCat(info.name, ": ", info.summary, "\n\nUsage: ", info.usage, "\n");
  for (const FlagGroup& group : AllGroups(info)) {
    absl::StrAppend(&out, "\n", group.title, ":\n");
    for (const std::string& entry : group.flags) {
      const FlagSpec spec = SpecOf(entry);
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(spec.name);
      if (flag == nullptr) {
        absl::StrAppend(&out, "  --", Dashed(spec.name), " (not defined in this build)\n");
        continue;
      }
      absl::StrAppend(&out, "  --", Dashed(spec.name),
                      spec.placeholder.empty() ? "" : " " + spec.placeholder, "\n");
      std::string text(flag->Help());
      const std::string default_value = flag->DefaultValue();
      if (!flag->IsOfType<bool>() && !default_value.empty() && default_value != "0") {
        absl::StrAppend(&text, " Default: ", default_value, ".");
      } else if (flag->IsOfType<bool>() && default_value == "true") {
        absl::StrAppend(&text, " On by default; --no-", Dashed(spec.name), " turns it off.");
      }
      if (info.environment) absl::StrAppend(&text, " [$", EnvironmentName(spec.name), "]");
      absl::StrAppend(&out, Wrap(text, "      ", 80));
    }
  }
  absl::StrAppend(&out, "\n  --help      this text\n  --version   print the version and exit\n");
  if (info.environment) {
    absl::StrAppend(&out, "\n",
                    Wrap("Every flag can also be set from the environment variable named in "
                         "brackets (PHI3_ and the flag's name in capitals, dashes as "
                         "underscores); a flag on the command line wins.",
                         "", 80));
  }
  if (!info.examples.empty()) absl::StrAppend(&out, "\nExamples:\n", info.examples);
  if (!info.notes.empty()) absl::StrAppend(&out, "\n", info.notes);
  return out;
}

void ExitIfVersionRequested(int argc, char** argv, std::string_view program) {
  for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i) {
    if (std::string_view(argv[i]) == "--version") {
      std::printf("%s\n", VersionLine(program).c_str());
      std::exit(0);
    }
  }
}

std::vector<char*> ParseCommandLine(int argc, char** argv, const ProgramInfo& info) {
  std::vector<std::string> args = Undash(argc, argv);
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    if (args[i] == "--help" || args[i] == "-h" || args[i] == "-help") {
      std::fputs(Help(info).c_str(), stdout);
      std::exit(0);
    }
  }
  ExitIfVersionRequested(argc, argv, info.name);
  if (info.environment) {
    // Before the command line's own flags, which therefore win.
    std::vector<std::string> from_environment;
    for (const FlagGroup& group : AllGroups(info)) {
      for (const std::string& entry : group.flags) {
        const std::string name = SpecOf(entry).name;
        const char* value = std::getenv(EnvironmentName(name).c_str());
        if (value != nullptr && !Given(args, name)) {
          from_environment.push_back(absl::StrCat("--", name, "=", value));
        }
      }
    }
    args.insert(args.begin() + 1, from_environment.begin(), from_environment.end());
  }
  absl::SetProgramUsageMessage(absl::StrCat(info.summary, "\nUsage: ", info.usage));
  // absl keeps pointers into argv for the positional arguments.
  static std::vector<std::string>* storage = new std::vector<std::string>();
  *storage = std::move(args);
  std::vector<char*> pointers;
  for (std::string& a : *storage) pointers.push_back(a.data());
  pointers.push_back(nullptr);
  return absl::ParseCommandLine(static_cast<int>(storage->size()), pointers.data());
}

}  // namespace phi3::cli
