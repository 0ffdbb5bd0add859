#include "service/restore_daily_usage.h"

#include <vector>

namespace phi3::service {

absl::StatusOr<RestoredUsage> RestoreDailyUsage(ledger::LedgerStore& store,
                                                TenantLimiter& limiter, absl::Time now) {
  const absl::CivilDay today = absl::ToCivilDay(now, absl::UTCTimeZone());
  ledger::ReportQuery query;
  query.group_by = ledger::ReportQuery::GroupBy::kTenant;
  query.since = absl::FromCivil(today, absl::UTCTimeZone());
  absl::StatusOr<std::vector<ledger::ReportRow>> rows = store.Report(query);
  if (!rows.ok()) return rows.status();
  RestoredUsage restored;
  for (const ledger::ReportRow& row : *rows) {
    const int64_t tokens = row.prompt_tokens + row.completion_tokens;
    limiter.RestoreToday(row.group, tokens);
    ++restored.tenants;
    restored.tokens += tokens;
  }
  return restored;
}

}  // namespace phi3::service
