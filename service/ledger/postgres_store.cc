#include "service/ledger/postgres_store.h"

#include <libpq-fe.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "service/ledger/ledger_sql.h"

namespace phi3::ledger {
namespace {

// Bounds on how long one write may stall the ledger's writer when the
// network or the server misbehaves, unless the URI sets them (seconds,
// milliseconds, milliseconds).
constexpr char kDefaultConnectTimeout[] = "3";
constexpr char kDefaultTcpUserTimeout[] = "5000";
constexpr char kDefaultStatementTimeout[] = "-c statement_timeout=5000";

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// "postgresql://user@host:port/db" from the parsed URI: never the password.
std::string DescribeConninfo(PQconninfoOption* options) {
  std::string user, host = "localhost", port = "5432", db;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string key = o->keyword;
    if (key == "user") user = o->val;
    if (key == "host" || key == "hostaddr") host = o->val;
    if (key == "port") port = o->val;
    if (key == "dbname") db = o->val;
  }
  return absl::StrCat("postgresql://", user, user.empty() ? "" : "@", host, ":", port, "/", db);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresStore>> PostgresStore::Open(const std::string& uri) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), &error);
  if (options == nullptr) {
    const std::string message(error != nullptr ? absl::StripTrailingAsciiWhitespace(error) : "");
    PQfreemem(error);
    return absl::InvalidArgumentError(
        absl::StrCat("--usage-ledger: not a PostgreSQL connection URI: ", message));
  }
  std::string description = DescribeConninfo(options);
  PQconninfoFree(options);
  return std::unique_ptr<PostgresStore>(new PostgresStore(uri, std::move(description)));
}

PostgresStore::~PostgresStore() { PQfinish(conn_); }

absl::Status PostgresStore::Fail(const std::string& what) {
  const std::string detail =
      conn_ != nullptr ? std::string(absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn_)))
                       : "";
  PQfinish(conn_);
  conn_ = nullptr;
  return absl::UnavailableError(
      absl::StrCat("usage ledger ", description_, ": ", what, ": ", detail));
}

absl::Status PostgresStore::Connect() {
  if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) return absl::OkStatus();
  PQfinish(conn_);
  // libpq processes keywords in order and keeps the last value: our defaults
  // first, then the URI (expanded from dbname), so whatever it sets wins.
  const char* keywords[] = {"connect_timeout", "tcp_user_timeout", "options",
                            "application_name", "dbname", nullptr};
  const char* values[] = {kDefaultConnectTimeout, kDefaultTcpUserTimeout,
                          kDefaultStatementTimeout, "phi3-usage-ledger", uri_.c_str(), nullptr};
  conn_ = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) return Fail("cannot connect");
  // Not the NOTICEs of CREATE ... IF NOT EXISTS on stderr at every connect.
  PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
  for (const char* statement : {sql::kCreateTable, sql::kCreateIndex}) {
    Result r(PQexec(conn_, statement));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) return Fail("cannot create the table");
  }
  return absl::OkStatus();
}

absl::Status PostgresStore::Append(absl::Span<const UsageRecord> records) {
  if (records.empty()) return absl::OkStatus();
  if (absl::Status s = Connect(); !s.ok()) return s;
  Result begin(PQexec(conn_, "BEGIN"));
  if (PQresultStatus(begin.get()) != PGRES_COMMAND_OK) return Fail("BEGIN failed");
  for (const UsageRecord& r : records) {
    const std::string fields[sql::kNumInsertParams] = {
        r.request_id,
        absl::StrCat(absl::ToUnixMicros(r.finished_at)),
        r.tenant,
        r.key_id,
        r.api,
        r.model_sha256,
        absl::StrCat(r.prompt_tokens),
        absl::StrCat(r.cached_prompt_tokens),
        absl::StrCat(r.completion_tokens),
        absl::StrFormat("%.17g", r.cost_usd),
        r.finish_reason,
        r.status_code,
        absl::StrFormat("%.17g", r.queue_ms),
        absl::StrFormat("%.17g", r.ttft_ms),
        absl::StrFormat("%.17g", r.total_ms),
    };
    const char* values[sql::kNumInsertParams];
    for (int i = 0; i < sql::kNumInsertParams; ++i) values[i] = fields[i].c_str();
    Result insert(PQexecParams(conn_, sql::kInsert, sql::kNumInsertParams, nullptr, values,
                               nullptr, nullptr, 0));
    if (PQresultStatus(insert.get()) != PGRES_COMMAND_OK) {
      // The connection is dropped, which rolls the transaction back.
      return Fail("cannot insert");
    }
  }
  Result commit(PQexec(conn_, "COMMIT"));
  if (PQresultStatus(commit.get()) != PGRES_COMMAND_OK) return Fail("COMMIT failed");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ReportRow>> PostgresStore::Report(const ReportQuery& query) {
  if (absl::Status s = Connect(); !s.ok()) return s;
  const std::string statement = sql::Report(
      query.group_by,
      "to_char(to_timestamp(finished_at_us / 1000000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')");
  const std::string since = absl::StrCat(query.since == absl::InfinitePast()
                                             ? std::numeric_limits<int64_t>::min()
                                             : absl::ToUnixMicros(query.since));
  const char* values[] = {since.c_str()};
  Result r(PQexecParams(conn_, statement.c_str(), 1, nullptr, values, nullptr, nullptr, 0));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return Fail("report failed");
  std::vector<ReportRow> rows;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    ReportRow row;
    row.group = PQgetvalue(r.get(), i, 0);
    bool ok = absl::SimpleAtoi(PQgetvalue(r.get(), i, 1), &row.requests) &&
              absl::SimpleAtoi(PQgetvalue(r.get(), i, 2), &row.prompt_tokens) &&
              absl::SimpleAtoi(PQgetvalue(r.get(), i, 3), &row.cached_prompt_tokens) &&
              absl::SimpleAtoi(PQgetvalue(r.get(), i, 4), &row.completion_tokens) &&
              absl::SimpleAtod(PQgetvalue(r.get(), i, 5), &row.cost_usd);
    if (!ok) return absl::InternalError(absl::StrCat("usage ledger ", description_,
                                                     ": unexpected report row ", i));
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace phi3::ledger
