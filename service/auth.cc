#include "service/auth.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace phi3::service {
namespace {

// Sets the option `field` (`name=value`, N >= 1 for numbers) of `policy`.
absl::Status ParseOption(absl::string_view field, TenantPolicy* policy) {
  const size_t eq = field.find('=');
  if (eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected `KEY TENANT [group=G] [streams=N] [tpm=N] [tpd=N]`, got a third field "
        "without '=' (", field.size(), " characters)"));
  }
  const absl::string_view name = field.substr(0, eq);
  const absl::string_view value = field.substr(eq + 1);
  if (name == "group") {
    if (value.empty()) return absl::InvalidArgumentError("group= needs a name");
    policy->share_group = std::string(value);
    return absl::OkStatus();
  }
  int64_t* target = nullptr;
  int64_t max = int64_t{1} << 50;
  int64_t streams = 0;
  if (name == "streams") {
    target = &streams;
    max = 1 << 20;
  } else if (name == "tpm") {
    target = &policy->limits.tokens_per_minute;
  } else if (name == "tpd") {
    target = &policy->limits.tokens_per_day;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown option `", name, "` (known: group, streams, tpm, tpd)"));
  }
  if (!absl::SimpleAtoi(value, target) || *target < 1 || *target > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, "= must be an integer in [1, ", max, "], got `", value, "`"));
  }
  if (target == &streams) policy->limits.max_streams = static_cast<int>(streams);
  return absl::OkStatus();
}

absl::StatusOr<KeyTable> ReadKeysFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot read api keys file ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat("api keys file ", path, " is not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  if (in) buffer << in.rdbuf();
  if (!in || in.bad()) {
    return absl::NotFoundError(absl::StrCat("cannot read api keys file ", path));
  }
  absl::StatusOr<KeyTable> table = ParseApiKeys(buffer.str());
  if (!table.ok()) {
    return absl::Status(table.status().code(),
                        absl::StrCat(path, ": ", table.status().message()));
  }
  return table;
}

}  // namespace

std::string CacheScopeOf(const Caller& caller, bool isolate_tenants) {
  if (!isolate_tenants) return "";
  // The first byte keeps the two namespaces apart.
  return caller.share_group.empty() ? absl::StrCat("t:", caller.tenant)
                                    : absl::StrCat("g:", caller.share_group);
}

std::string KeyDigest(absl::string_view key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(key.data(), key.size(), digest, &size, EVP_sha256(), nullptr) != 1 ||
      size != 32) {
    // libcrypto's SHA-256 does not fail on memory input; never let a lookup
    // match if it somehow did.
    return std::string();
  }
  return std::string(reinterpret_cast<const char*>(digest), size);
}

absl::StatusOr<KeyTable> ParseApiKeys(absl::string_view contents) {
  KeyTable table;
  absl::flat_hash_map<std::string, int> policy_line;  // tenant -> line that set options
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "api keys line ", line_number, ": expected `KEY TENANT [options]`, got ",
          fields.size(), " field"));
    }
    TenantPolicy policy;
    for (size_t i = 2; i < fields.size(); ++i) {
      if (absl::Status s = ParseOption(fields[i], &policy); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("api keys line ", line_number, ": ", s.message()));
      }
    }
    const std::string tenant(fields[1]);
    const std::string digest = KeyDigest(fields[0]);
    KeyTable::Entry entry{tenant, absl::BytesToHexString(digest).substr(0, 12)};
    if (!table.by_digest.emplace(digest, std::move(entry)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("api keys line ", line_number, ": duplicate key (tenant ", tenant, ")"));
    }
    auto [it, inserted] = table.tenants.emplace(tenant, policy);
    const bool has_options = fields.size() > 2;
    if (has_options && !inserted && policy_line.contains(tenant) && it->second != policy) {
      return absl::InvalidArgumentError(absl::StrCat(
          "api keys line ", line_number, ": options for tenant ", tenant,
          " differ from those on line ", policy_line[tenant]));
    }
    if (has_options) {
      it->second = policy;
      policy_line.emplace(tenant, line_number);
    }
  }
  if (table.by_digest.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no API keys (", line_number, " lines, all blank or comments): every caller would "
        "be refused"));
  }
  return table;
}

absl::StatusOr<std::unique_ptr<ApiKeyStore>> ApiKeyStore::Load(std::string path) {
  absl::StatusOr<KeyTable> table = ReadKeysFile(path);
  if (!table.ok()) return table.status();
  return std::unique_ptr<ApiKeyStore>(new ApiKeyStore(std::move(path), *std::move(table)));
}

ApiKeyStore::ApiKeyStore(std::string path, KeyTable table)
    : path_(std::move(path)), table_(std::make_shared<const KeyTable>(std::move(table))) {}

absl::Status ApiKeyStore::Reload() {
  absl::StatusOr<KeyTable> table = ReadKeysFile(path_);
  if (!table.ok()) return table.status();
  auto fresh = std::make_shared<const KeyTable>(*std::move(table));
  absl::MutexLock lock(&mu_);
  table_ = std::move(fresh);
  return absl::OkStatus();
}

std::optional<Caller> ApiKeyStore::CallerForKey(absl::string_view key) const {
  std::shared_ptr<const KeyTable> table;
  {
    absl::MutexLock lock(&mu_);
    table = table_;
  }
  const std::string digest = KeyDigest(key);
  if (digest.empty()) return std::nullopt;
  auto it = table->by_digest.find(digest);
  if (it == table->by_digest.end()) return std::nullopt;
  Caller caller;
  caller.tenant = it->second.tenant;
  caller.key_id = it->second.key_id;
  const TenantPolicy& policy = table->tenants.at(caller.tenant);
  caller.share_group = policy.share_group;
  caller.limits = policy.limits;
  return caller;
}

size_t ApiKeyStore::size() const {
  absl::MutexLock lock(&mu_);
  return table_->by_digest.size();
}

Authenticator::Authenticator(const ApiKeyStore* keys, std::string anonymous_tenant)
    : keys_(keys), anonymous_tenant_(std::move(anonymous_tenant)) {}

absl::StatusOr<Caller> Authenticator::Authenticate(
    std::optional<absl::string_view> authorization) const {
  if (keys_ == nullptr) {
    Caller anonymous;
    anonymous.tenant = anonymous_tenant_;
    return anonymous;
  }
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "missing API key: send metadata `authorization: Bearer <key>`");
  }
  const absl::string_view value = *authorization;
  constexpr absl::string_view kScheme = "Bearer";
  const absl::string_view key =
      value.size() > kScheme.size() ? value.substr(kScheme.size() + 1) : absl::string_view();
  const bool well_formed =
      value.size() > kScheme.size() + 1 &&
      absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme) &&
      value[kScheme.size()] == ' ' &&
      std::none_of(key.begin(), key.end(),
                   [](char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); });
  if (!well_formed) {
    return absl::UnauthenticatedError(
        "malformed authorization metadata: expected `Bearer <key>` (one space, no other "
        "whitespace)");
  }
  std::optional<Caller> caller = keys_->CallerForKey(key);
  if (!caller.has_value()) return absl::UnauthenticatedError("unknown API key");
  return *std::move(caller);
}

}  // namespace phi3::service
