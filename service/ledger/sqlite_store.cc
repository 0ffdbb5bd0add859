#include "service/ledger/sqlite_store.h"

#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/ledger/ledger_sql.h"

namespace phi3::ledger {
namespace {

// How long a write waits for another process's lock (several servers or a
// report on the same file) before it counts as a failed write.
constexpr int kBusyTimeoutMs = 5000;

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                 nullptr);
  std::unique_ptr<SqliteStore> store(new SqliteStore(path, db));
  if (rc != SQLITE_OK) return store->Error(rc, "cannot open");
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  for (const char* statement : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                                sql::kCreateTable, sql::kCreateIndex}) {
    if (absl::Status s = store->Exec(statement); !s.ok()) return s;
  }
  if (int prc = sqlite3_prepare_v2(db, sql::kInsert, -1, &store->insert_, nullptr);
      prc != SQLITE_OK) {
    return store->Error(prc, "cannot prepare the insert");
  }
  return store;
}

SqliteStore::~SqliteStore() {
  sqlite3_finalize(insert_);
  sqlite3_close_v2(db_);
}

absl::Status SqliteStore::Error(int rc, const char* what) const {
  const std::string message = absl::StrCat("usage ledger sqlite:", path_, ": ", what, ": ",
                                           db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
  switch (rc & 0xff) {  // primary result code
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return absl::UnavailableError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status SqliteStore::Exec(const char* statement) {
  const int rc = sqlite3_exec(db_, statement, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, statement);
}

absl::Status SqliteStore::Append(absl::Span<const UsageRecord> records) {
  if (records.empty()) return absl::OkStatus();
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  for (const UsageRecord& r : records) {
    sqlite3_stmt* st = insert_;
    sqlite3_reset(st);
    auto text = [st](int i, const std::string& v) {
      sqlite3_bind_text(st, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    };
    text(1, r.request_id);
    sqlite3_bind_int64(st, 2, absl::ToUnixMicros(r.finished_at));
    text(3, r.tenant);
    text(4, r.key_id);
    text(5, r.api);
    text(6, r.model_sha256);
    sqlite3_bind_int64(st, 7, r.prompt_tokens);
    sqlite3_bind_int64(st, 8, r.cached_prompt_tokens);
    sqlite3_bind_int64(st, 9, r.completion_tokens);
    sqlite3_bind_double(st, 10, r.cost_usd);
    text(11, r.finish_reason);
    text(12, r.status_code);
    sqlite3_bind_double(st, 13, r.queue_ms);
    sqlite3_bind_double(st, 14, r.ttft_ms);
    sqlite3_bind_double(st, 15, r.total_ms);
    if (const int rc = sqlite3_step(st); rc != SQLITE_DONE) {
      absl::Status s = Error(rc, "cannot insert");
      sqlite3_reset(st);
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return s;
    }
  }
  sqlite3_reset(insert_);
  sqlite3_clear_bindings(insert_);
  if (absl::Status s = Exec("COMMIT"); !s.ok()) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ReportRow>> SqliteStore::Report(const ReportQuery& query) {
  const std::string statement =
      sql::Report(query.group_by, "strftime('%Y-%m-%d', finished_at_us / 1000000, 'unixepoch')");
  sqlite3_stmt* st = nullptr;
  if (int rc = sqlite3_prepare_v2(db_, statement.c_str(), -1, &st, nullptr); rc != SQLITE_OK) {
    return Error(rc, "cannot prepare the report");
  }
  const int64_t since = query.since == absl::InfinitePast()
                            ? std::numeric_limits<int64_t>::min()
                            : absl::ToUnixMicros(query.since);
  sqlite3_bind_int64(st, 1, since);
  std::vector<ReportRow> rows;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    ReportRow row;
    const unsigned char* group = sqlite3_column_text(st, 0);
    row.group = group != nullptr ? reinterpret_cast<const char*>(group) : "";
    row.requests = sqlite3_column_int64(st, 1);
    row.prompt_tokens = sqlite3_column_int64(st, 2);
    row.cached_prompt_tokens = sqlite3_column_int64(st, 3);
    row.completion_tokens = sqlite3_column_int64(st, 4);
    row.cost_usd = sqlite3_column_double(st, 5);
    rows.push_back(std::move(row));
  }
  absl::Status status = rc == SQLITE_DONE ? absl::OkStatus() : Error(rc, "report failed");
  sqlite3_finalize(st);
  if (!status.ok()) return status;
  return rows;
}

}  // namespace phi3::ledger
