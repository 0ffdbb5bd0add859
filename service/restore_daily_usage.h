// Start-up step of phi3-server: gives the tenant limiter back the tokens each
// tenant used earlier in the current UTC day, as the usage ledger recorded
// them, so that a restart does not reset the per-day token budgets.
#ifndef PHI3_SERVICE_RESTORE_DAILY_USAGE_H_
#define PHI3_SERVICE_RESTORE_DAILY_USAGE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/ledger/ledger_store.h"
#include "service/tenant_limiter.h"

namespace phi3::service {

struct RestoredUsage {
  int tenants = 0;
  int64_t tokens = 0;  // prompt + completion, as TenantLimiter::Charge counts
};

// Reads today's (UTC, as of `now`) totals per tenant from `store` and adds
// them to `limiter`. Errors are the store's (e.g. Unavailable when PostgreSQL
// is down); the limiter is unchanged then. Records still in a spill file are
// not counted.
absl::StatusOr<RestoredUsage> RestoreDailyUsage(ledger::LedgerStore& store,
                                                TenantLimiter& limiter, absl::Time now);

}  // namespace phi3::service

#endif  // PHI3_SERVICE_RESTORE_DAILY_USAGE_H_
