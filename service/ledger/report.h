// phi3-usage's report: parsing its --since and --by values and printing the
// rows a LedgerStore returns, as a table or as JSON.
#ifndef PHI3_SERVICE_LEDGER_REPORT_H_
#define PHI3_SERVICE_LEDGER_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/ledger/ledger_store.h"

namespace phi3::ledger {

// "" (everything), a UTC date "2026-12-03", an RFC 3339 time
// "2026-12-03T10:00:00Z", or an age like "90m", "24h", "7d" before `now`.
// InvalidArgument naming the accepted forms otherwise.
absl::StatusOr<absl::Time> ParseSince(absl::string_view text, absl::Time now);
// "tenant" or "day".
absl::StatusOr<ReportQuery::GroupBy> ParseGroupBy(absl::string_view text);

// Aligned columns with a header and a TOTAL line.
std::string FormatReportTable(const std::vector<ReportRow>& rows, ReportQuery::GroupBy by);
// {"by": ..., "since": ... | null, "rows": [{<by>: ..., "requests": ..., ...}], "total": {...}}
std::string FormatReportJson(const std::vector<ReportRow>& rows, const ReportQuery& query);

}  // namespace phi3::ledger

#endif  // PHI3_SERVICE_LEDGER_REPORT_H_
