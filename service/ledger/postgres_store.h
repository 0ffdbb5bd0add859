// A ledger in PostgreSQL, for several replicas writing one ledger. Connects
// lazily and again after any failure, so a database that is down only makes
// Append return Unavailable until it is back.
#ifndef PHI3_SERVICE_LEDGER_POSTGRES_STORE_H_
#define PHI3_SERVICE_LEDGER_POSTGRES_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "service/ledger/ledger_store.h"

struct pg_conn;

namespace phi3::ledger {

class PostgresStore final : public LedgerStore {
 public:
  // Checks that `uri` parses as a libpq connection URI (InvalidArgument
  // otherwise, without echoing a password); does not connect.
  static absl::StatusOr<std::unique_ptr<PostgresStore>> Open(const std::string& uri);
  ~PostgresStore() override;

  absl::Status Append(absl::Span<const UsageRecord> records) override;
  absl::StatusOr<std::vector<ReportRow>> Report(const ReportQuery& query) override;
  std::string Describe() const override { return description_; }

 private:
  PostgresStore(std::string uri, std::string description)
      : uri_(std::move(uri)), description_(std::move(description)) {}
  // Connects (and creates the table) unless a healthy connection exists.
  absl::Status Connect();
  // Drops the connection after a failure; the next call reconnects.
  absl::Status Fail(const std::string& what);

  const std::string uri_;
  const std::string description_;
  pg_conn* conn_ = nullptr;
};

}  // namespace phi3::ledger

#endif  // PHI3_SERVICE_LEDGER_POSTGRES_STORE_H_
