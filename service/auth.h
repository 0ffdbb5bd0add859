// API keys -> tenants.
//
// Keys file format: one `KEY TENANT` pair per line, separated by whitespace;
// blank lines and lines starting with '#' are ignored; a key may appear once.
//
// Thread safety: ApiKeyStore is safe to use from any thread; Reload() swaps
// the whole table atomically, so a request sees either the old or the new keys.
#ifndef PHI3_SERVICE_AUTH_H_
#define PHI3_SERVICE_AUTH_H_

#include <memory>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace phi3::service {

using KeyTable = absl::flat_hash_map<std::string, std::string>;  // key -> tenant

// Parses a keys file's contents. InvalidArgument names the line number and
// what is wrong (missing tenant, extra fields, duplicate key).
absl::StatusOr<KeyTable> ParseApiKeys(absl::string_view contents);

class ApiKeyStore {
 public:
  // Reads and parses `path`. NotFound if it cannot be read.
  static absl::StatusOr<std::unique_ptr<ApiKeyStore>> Load(std::string path);

  // Re-reads the file. On error the current keys stay in force.
  absl::Status Reload();

  // The tenant of `key`, or nullopt when unknown.
  std::optional<std::string> TenantForKey(absl::string_view key) const;
  size_t size() const;

 private:
  ApiKeyStore(std::string path, KeyTable table);
  const std::string path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const KeyTable> table_ ABSL_GUARDED_BY(mu_);
};

// Decides the tenant of a call from its `authorization` metadata value.
class Authenticator {
 public:
  // `keys` == nullptr turns authentication off: every call is tenant
  // `anonymous_tenant`. Otherwise `keys` must outlive this object.
  Authenticator(const ApiKeyStore* keys, std::string anonymous_tenant = "local");

  // `authorization` is the metadata value if present ("Bearer KEY").
  // Returns the tenant, or Unauthenticated saying what is missing or wrong
  // (never echoing the key).
  absl::StatusOr<std::string> Authenticate(std::optional<absl::string_view> authorization) const;

  bool enabled() const { return keys_ != nullptr; }

 private:
  const ApiKeyStore* keys_;
  std::string anonymous_tenant_;
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_AUTH_H_
