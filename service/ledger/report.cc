#include "service/ledger/report.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "service/usd.h"

namespace phi3::ledger {
namespace {

const char* GroupName(ReportQuery::GroupBy by) {
  return by == ReportQuery::GroupBy::kDay ? "day" : "tenant";
}

ReportRow Total(const std::vector<ReportRow>& rows) {
  ReportRow total;
  total.group = "TOTAL";
  for (const ReportRow& r : rows) {
    total.requests += r.requests;
    total.prompt_tokens += r.prompt_tokens;
    total.cached_prompt_tokens += r.cached_prompt_tokens;
    total.completion_tokens += r.completion_tokens;
    total.cost_usd += r.cost_usd;
  }
  return total;
}

}  // namespace

absl::StatusOr<absl::Time> ParseSince(absl::string_view text, absl::Time now) {
  if (text.empty()) return absl::InfinitePast();
  absl::Time t;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &error)) return t;
  if (absl::ParseTime("%Y-%m-%d", text, absl::UTCTimeZone(), &t, &error)) return t;
  absl::Duration age;
  int64_t days = 0;
  if (absl::EndsWith(text, "d") && absl::SimpleAtoi(text.substr(0, text.size() - 1), &days) &&
      days >= 0) {
    return now - absl::Hours(24 * days);
  }
  if (absl::ParseDuration(text, &age) && age >= absl::ZeroDuration()) return now - age;
  return absl::InvalidArgumentError(absl::StrCat(
      "--since \"", text,
      "\": expected a UTC date (2026-12-03), an RFC 3339 time (2026-12-03T10:00:00Z) or an "
      "age (90m, 24h, 7d)"));
}

absl::StatusOr<ReportQuery::GroupBy> ParseGroupBy(absl::string_view text) {
  if (text == "tenant") return ReportQuery::GroupBy::kTenant;
  if (text == "day") return ReportQuery::GroupBy::kDay;
  return absl::InvalidArgumentError(
      absl::StrCat("--by \"", text, "\": expected tenant or day"));
}

std::string FormatReportTable(const std::vector<ReportRow>& rows, ReportQuery::GroupBy by) {
  size_t width = 6;
  for (const ReportRow& r : rows) width = std::max(width, r.group.size());
  auto line = [width](const std::string& group, const std::string& requests,
                      const std::string& prompt, const std::string& cached,
                      const std::string& completion, const std::string& cost) {
    return absl::StrFormat("%-*s %10s %14s %14s %14s %14s\n", width, group, requests, prompt,
                           cached, completion, cost);
  };
  std::string out = line(absl::AsciiStrToUpper(GroupName(by)), "REQUESTS", "PROMPT_TOKENS",
                         "CACHED_TOKENS", "COMPLETION", "COST_USD");
  std::vector<ReportRow> all = rows;
  all.push_back(Total(rows));
  for (const ReportRow& r : all) {
    out += line(r.group, absl::StrCat(r.requests), absl::StrCat(r.prompt_tokens),
                absl::StrCat(r.cached_prompt_tokens), absl::StrCat(r.completion_tokens),
                absl::StrFormat("%.6f", r.cost_usd));
  }
  return out;
}

std::string FormatReportJson(const std::vector<ReportRow>& rows, const ReportQuery& query) {
  auto object = [](const ReportRow& r) {
    return nlohmann::json{{"requests", r.requests},
                          {"prompt_tokens", r.prompt_tokens},
                          {"cached_prompt_tokens", r.cached_prompt_tokens},
                          {"completion_tokens", r.completion_tokens},
                          {"cost_usd", service::RoundUsd(r.cost_usd)}};  // a sum of rounded costs
  };
  nlohmann::json out;
  out["by"] = GroupName(query.group_by);
  out["since"] = query.since == absl::InfinitePast()
                     ? nlohmann::json(nullptr)
                     : nlohmann::json(absl::FormatTime(absl::RFC3339_full, query.since,
                                                       absl::UTCTimeZone()));
  out["rows"] = nlohmann::json::array();
  for (const ReportRow& r : rows) {
    nlohmann::json j = object(r);
    j[GroupName(query.group_by)] = r.group;
    out["rows"].push_back(std::move(j));
  }
  out["total"] = object(Total(rows));
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace phi3::ledger
