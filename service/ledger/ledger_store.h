// Where usage records live: a small interface over a SQL database, with an
// embedded SQLite implementation (sqlite_store.h) and a PostgreSQL one for
// replicas that share a ledger (postgres_store.h).
//
// Schema (both databases): table `usage_ledger`, one row per request, keyed
// by request_id; finished_at_us is microseconds since the Unix epoch (UTC).
//
// Thread safety: a store is used by one thread at a time.
#ifndef PHI3_SERVICE_LEDGER_LEDGER_STORE_H_
#define PHI3_SERVICE_LEDGER_LEDGER_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "service/ledger/usage_record.h"

namespace phi3::ledger {

struct ReportQuery {
  enum class GroupBy { kTenant, kDay };  // day: UTC calendar day, YYYY-MM-DD
  GroupBy group_by = GroupBy::kTenant;
  absl::Time since = absl::InfinitePast();  // records finished at or after
};

struct ReportRow {
  std::string group;  // the tenant or the day
  int64_t requests = 0;
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double cost_usd = 0;
};

class LedgerStore {
 public:
  virtual ~LedgerStore() = default;

  // Stores `records` in one transaction: all or none. A record whose
  // request_id is already stored is skipped, so writing a batch again (a
  // spill file replayed after a crash) is harmless. Unavailable when the
  // database cannot be reached (the caller retries later); other codes for
  // errors that retrying will not fix.
  virtual absl::Status Append(absl::Span<const UsageRecord> records) = 0;

  // Totals per group, ordered by group.
  virtual absl::StatusOr<std::vector<ReportRow>> Report(const ReportQuery& query) = 0;

  // For logs: the URI without a password.
  virtual std::string Describe() const = 0;
};

// Opens the store a `--usage-ledger` URI names:
//   sqlite:PATH             an SQLite file (created if missing; WAL journal)
//   postgresql://...        libpq connection URI (postgres:// too); the server
//                           connects lazily, so a database that is down at
//                           start is not an error
//   none                    no ledger: returns nullptr
// InvalidArgument for any other form; SQLite errors opening the file as is.
absl::StatusOr<std::unique_ptr<LedgerStore>> OpenLedgerStore(absl::string_view uri);

}  // namespace phi3::ledger

#endif  // PHI3_SERVICE_LEDGER_LEDGER_STORE_H_
