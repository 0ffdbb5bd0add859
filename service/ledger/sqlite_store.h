// The embedded ledger: one SQLite file in WAL mode with synchronous=FULL, so
// a committed Append survives kill -9 and power loss, and readers (the
// phi3-usage report) never block the server's writes.
#ifndef PHI3_SERVICE_LEDGER_SQLITE_STORE_H_
#define PHI3_SERVICE_LEDGER_SQLITE_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "service/ledger/ledger_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace phi3::ledger {

class SqliteStore final : public LedgerStore {
 public:
  // Opens or creates `path` and its table. Unavailable naming the path and
  // SQLite's message when it cannot be opened.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path);
  ~SqliteStore() override;

  absl::Status Append(absl::Span<const UsageRecord> records) override;
  absl::StatusOr<std::vector<ReportRow>> Report(const ReportQuery& query) override;
  std::string Describe() const override { return "sqlite:" + path_; }

 private:
  SqliteStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  // Status of the last error on db_, prefixed with `what`.
  absl::Status Error(int rc, const char* what) const;
  absl::Status Exec(const char* sql);

  const std::string path_;
  sqlite3* db_;
  sqlite3_stmt* insert_ = nullptr;
};

}  // namespace phi3::ledger

#endif  // PHI3_SERVICE_LEDGER_SQLITE_STORE_H_
