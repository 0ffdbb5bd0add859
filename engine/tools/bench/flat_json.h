// A reader for the flat JSON objects tests/oracle/bench.mjs prints (one per
// line): string keys mapped to numbers, strings, booleans or null. Nested
// values are skipped, not parsed. Not a general JSON library.
#ifndef PHI3_ENGINE_TOOLS_BENCH_FLAT_JSON_H_
#define PHI3_ENGINE_TOOLS_BENCH_FLAT_JSON_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace phi3::bench {

struct FlatJson {
  std::map<std::string, double> numbers;       // also true = 1, false = 0
  std::map<std::string, std::string> strings;  // unescaped

  std::optional<double> Number(const std::string& key) const;
  std::string String(const std::string& key) const;  // "" when absent
};

// InvalidArgument naming the offset for text that is not one JSON object.
absl::StatusOr<FlatJson> ParseFlatJson(std::string_view text);

// `s` as a JSON string literal (quotes included).
std::string JsonQuote(std::string_view s);

// A JSON number, or null for NaN/inf (JSON has no spelling for them).
std::string JsonNumber(double v);

}  // namespace phi3::bench

#endif  // PHI3_ENGINE_TOOLS_BENCH_FLAT_JSON_H_
