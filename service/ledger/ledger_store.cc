#include "service/ledger/ledger_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/ledger/postgres_store.h"
#include "service/ledger/sqlite_store.h"

namespace phi3::ledger {

absl::StatusOr<std::unique_ptr<LedgerStore>> OpenLedgerStore(absl::string_view uri) {
  if (uri == "none") return nullptr;
  if (absl::StartsWith(uri, "sqlite:")) {
    const std::string path(uri.substr(7));
    if (path.empty()) return absl::InvalidArgumentError("--usage-ledger sqlite:PATH needs a PATH");
    return SqliteStore::Open(path);
  }
  if (absl::StartsWith(uri, "postgresql://") || absl::StartsWith(uri, "postgres://")) {
    return PostgresStore::Open(std::string(uri));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--usage-ledger must be sqlite:PATH, postgresql://... or none; got \"",
      uri.substr(0, uri.find(':')), absl::StrContains(uri, ':') ? ":...\"" : "\""));
}

}  // namespace phi3::ledger
