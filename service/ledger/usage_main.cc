// phi3-usage: reports on the usage ledger phi3-server writes
// (--usage-ledger). Reads the database only: records still in a server's
// spill file appear once the server has written them back.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/flags.h"
#include "service/ledger/ledger_store.h"
#include "service/ledger/report.h"

ABSL_FLAG(std::string, ledger, "", "The ledger: sqlite:PATH or postgresql://... (required).");
ABSL_FLAG(std::string, by, "tenant", "Group rows by tenant or by day (UTC).");
ABSL_FLAG(std::string, since, "",
          "Only requests finished since: 2026-12-03, 2026-12-03T10:00:00Z, or an age (24h, 7d).");
ABSL_FLAG(bool, json, false, "Print JSON instead of a table.");

namespace {

const phi3::cli::ProgramInfo& UsageProgram() {
  static const phi3::cli::ProgramInfo* info = new phi3::cli::ProgramInfo{
      "phi3-usage",
      "reports on phi3-server's usage ledger (tokens and spend per tenant or per day).",
      "phi3-usage --ledger URI report [--by tenant|day] [--since TIME] [--json]",
      {{"Ledger", {"ledger=URI"}}, {"Report", {"by=tenant|day", "since=TIME", "json"}}},
      "  phi3-usage --ledger sqlite:/var/lib/phi3serve/usage.db report --since 7d\n"
      "  phi3-usage --ledger postgresql://phi3@127.0.0.1:5432/phi3 report --by day --json\n",
      "URI is as given to phi3-server's --usage-ledger. Exit status 1: the report failed.\n"};
  return *info;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "phi3-usage: %s\n", message.c_str());
  return 1;
}

int Run(const std::vector<char*>& positional) {
  if (positional.size() != 2 || std::string(positional[1]) != "report") {
    return Fail("expected the command `report` (see --help)");
  }
  const std::string uri = absl::GetFlag(FLAGS_ledger);
  if (uri.empty() || uri == "none") return Fail("--ledger sqlite:PATH or postgresql://... is required");
  phi3::ledger::ReportQuery query;
  absl::StatusOr<phi3::ledger::ReportQuery::GroupBy> by =
      phi3::ledger::ParseGroupBy(absl::GetFlag(FLAGS_by));
  if (!by.ok()) return Fail(std::string(by.status().message()));
  query.group_by = *by;
  absl::StatusOr<absl::Time> since = phi3::ledger::ParseSince(absl::GetFlag(FLAGS_since), absl::Now());
  if (!since.ok()) return Fail(std::string(since.status().message()));
  query.since = *since;
  absl::StatusOr<std::unique_ptr<phi3::ledger::LedgerStore>> store =
      phi3::ledger::OpenLedgerStore(uri);
  if (!store.ok()) return Fail(std::string(store.status().message()));
  absl::StatusOr<std::vector<phi3::ledger::ReportRow>> rows = (*store)->Report(query);
  if (!rows.ok()) return Fail(std::string(rows.status().message()));
  const std::string out = absl::GetFlag(FLAGS_json)
                              ? phi3::ledger::FormatReportJson(*rows, query)
                              : phi3::ledger::FormatReportTable(*rows, query.group_by);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return Run(phi3::cli::ParseCommandLine(argc, argv, UsageProgram()));
}
