// The ledger's SQL, shared by the SQLite and PostgreSQL stores: both accept
// these types, `$N` parameters and ON CONFLICT DO NOTHING. Only the
// expression of a record's UTC day differs.
#ifndef PHI3_SERVICE_LEDGER_LEDGER_SQL_H_
#define PHI3_SERVICE_LEDGER_LEDGER_SQL_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "service/ledger/ledger_store.h"

namespace phi3::ledger::sql {

inline constexpr char kCreateTable[] =
    "CREATE TABLE IF NOT EXISTS usage_ledger ("
    " request_id TEXT PRIMARY KEY,"
    " finished_at_us BIGINT NOT NULL,"
    " tenant TEXT NOT NULL,"
    " key_id TEXT NOT NULL,"
    " api TEXT NOT NULL,"
    " model_sha256 TEXT NOT NULL,"
    " prompt_tokens BIGINT NOT NULL,"
    " cached_prompt_tokens BIGINT NOT NULL,"
    " completion_tokens BIGINT NOT NULL,"
    " cost_usd DOUBLE PRECISION NOT NULL,"
    " finish_reason TEXT NOT NULL,"
    " status_code TEXT NOT NULL,"
    " queue_ms DOUBLE PRECISION NOT NULL,"
    " ttft_ms DOUBLE PRECISION NOT NULL,"
    " total_ms DOUBLE PRECISION NOT NULL)";
inline constexpr char kCreateIndex[] =
    "CREATE INDEX IF NOT EXISTS usage_ledger_finished_at ON usage_ledger (finished_at_us)";

// Parameters $1..$15 in UsageRecord's field order (request_id first).
inline constexpr int kNumInsertParams = 15;
inline constexpr char kInsert[] =
    "INSERT INTO usage_ledger (request_id, finished_at_us, tenant, key_id, api, model_sha256,"
    " prompt_tokens, cached_prompt_tokens, completion_tokens, cost_usd, finish_reason,"
    " status_code, queue_ms, ttft_ms, total_ms)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    " ON CONFLICT (request_id) DO NOTHING";

// Columns: group, requests, prompt, cached, completion, cost; one parameter
// $1: the least finished_at_us.
inline std::string Report(ReportQuery::GroupBy group_by, absl::string_view day_expression) {
  const std::string group =
      group_by == ReportQuery::GroupBy::kDay ? std::string(day_expression) : "tenant";
  return absl::StrCat("SELECT ", group,
                      " AS grp, COUNT(*), SUM(prompt_tokens), SUM(cached_prompt_tokens),"
                      " SUM(completion_tokens), SUM(cost_usd) FROM usage_ledger"
                      " WHERE finished_at_us >= $1 GROUP BY grp ORDER BY grp");
}

}  // namespace phi3::ledger::sql

#endif  // PHI3_SERVICE_LEDGER_LEDGER_SQL_H_
