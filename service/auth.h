// API keys -> callers (tenant, prefix-cache share group, per-tenant limits).
//
// Keys file format, one key per line, fields separated by spaces or tabs:
//   KEY TENANT [group=G] [streams=N] [tpm=N] [tpd=N]
// blank lines and lines starting with '#' are ignored; a key may appear once.
//   group=G    tenants naming the same G share the prompt-prefix cache (by
//              default each tenant has its own: see README "Security")
//   streams=N  open Generate/Chat streams of the tenant (default: the
//              server's --max-streams-per-tenant)
//   tpm=N      tokens (prompt + completion) per minute, sliding window
//   tpd=N      tokens per UTC day
// N >= 1. A tenant's options may be given on any of its key lines; when given
// on several they must agree. `KEY TENANT` alone (the original format) means
// the tenant's own cache and no token limits.
//
// Keys are held only as SHA-256 digests and looked up by digest, so the time
// a lookup takes depends on the digest of the presented key, never on how
// many leading characters it shares with a real key.
//
// Thread safety: ApiKeyStore is safe to use from any thread; Reload() swaps
// the whole table atomically, so a request sees either the old or the new keys.
#ifndef PHI3_SERVICE_AUTH_H_
#define PHI3_SERVICE_AUTH_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace phi3::service {

// Per-tenant limits; 0 = not set (streams: the server default; tokens: none).
struct TenantLimits {
  int max_streams = 0;
  int64_t tokens_per_minute = 0;
  int64_t tokens_per_day = 0;
  bool operator==(const TenantLimits&) const = default;
};

// What the keys file says about one tenant.
struct TenantPolicy {
  std::string share_group;  // "" = the tenant's own prefix cache
  TenantLimits limits;
  bool operator==(const TenantPolicy&) const = default;
};

// Who is calling, as decided by the Authenticator.
struct Caller {
  std::string tenant;
  std::string key_id;       // 12 hex digits of the key's SHA-256; "" without auth
  std::string share_group;  // from the keys file
  TenantLimits limits;
};

// The prefix-cache partition of `caller`'s requests (GenerateRequest::
// cache_scope): its share group, else its own tenant; "" (one cache for
// everyone) when `isolate_tenants` is false. Group and tenant names live in
// separate namespaces, so a tenant named like a group never joins it.
std::string CacheScopeOf(const Caller& caller, bool isolate_tenants);

struct KeyTable {
  struct Entry {
    std::string tenant;
    std::string key_id;
  };
  absl::flat_hash_map<std::string, Entry> by_digest;       // SHA-256(key), raw bytes
  absl::flat_hash_map<std::string, TenantPolicy> tenants;  // tenant -> policy
};

// SHA-256 of `key`, 32 raw bytes.
std::string KeyDigest(absl::string_view key);

// Parses a keys file's contents. InvalidArgument names the line number and
// what is wrong (missing tenant, unknown option, bad number, duplicate key,
// options that disagree with an earlier line of the same tenant). A file
// without any key is FailedPrecondition: loading it would lock every caller
// out.
absl::StatusOr<KeyTable> ParseApiKeys(absl::string_view contents);

class ApiKeyStore {
 public:
  // Reads and parses `path`. NotFound if it cannot be read (or is not a
  // regular file); errors of ParseApiKeys otherwise, prefixed with the path.
  static absl::StatusOr<std::unique_ptr<ApiKeyStore>> Load(std::string path);

  // Re-reads the file. On any error, an empty file included, the current
  // keys stay in force and the status says why.
  absl::Status Reload();

  // The caller holding `key`, or nullopt when unknown.
  std::optional<Caller> CallerForKey(absl::string_view key) const;
  size_t size() const;
  const std::string& path() const { return path_; }

 private:
  ApiKeyStore(std::string path, KeyTable table);
  const std::string path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const KeyTable> table_ ABSL_GUARDED_BY(mu_);
};

// Decides the caller from a call's `authorization` metadata value.
class Authenticator {
 public:
  // `keys` == nullptr turns authentication off: every call is tenant
  // `anonymous_tenant` without limits. Otherwise `keys` must outlive this.
  Authenticator(const ApiKeyStore* keys, std::string anonymous_tenant = "local");

  // `authorization` is the metadata value if present. Accepted form
  // (RFC 6750): the scheme `Bearer` in any case, exactly one space, the key;
  // nothing before, after or in between. Returns the caller, or
  // Unauthenticated saying what is missing or malformed (never echoing the
  // key).
  absl::StatusOr<Caller> Authenticate(std::optional<absl::string_view> authorization) const;

  bool enabled() const { return keys_ != nullptr; }

 private:
  const ApiKeyStore* keys_;
  std::string anonymous_tenant_;
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_AUTH_H_
