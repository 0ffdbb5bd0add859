#include "service/auth.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace phi3::service {

absl::StatusOr<KeyTable> ParseApiKeys(absl::string_view contents) {
  KeyTable table;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "api keys line ", line_number, ": expected 2 fields `KEY TENANT`, got ",
          fields.size()));
    }
    if (!table.emplace(std::string(fields[0]), std::string(fields[1])).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("api keys line ", line_number, ": duplicate key (tenant ",
                       fields[1], ")"));
    }
  }
  return table;
}

namespace {

absl::StatusOr<KeyTable> ReadKeysFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read api keys file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  absl::StatusOr<KeyTable> table = ParseApiKeys(buffer.str());
  if (!table.ok()) {
    return absl::Status(table.status().code(),
                        absl::StrCat(path, ": ", table.status().message()));
  }
  return table;
}

}  // namespace

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

std::optional<std::string> ApiKeyStore::TenantForKey(absl::string_view key) const {
  std::shared_ptr<const KeyTable> table;
  {
    absl::MutexLock lock(&mu_);
    table = table_;
  }
  auto it = table->find(key);
  if (it == table->end()) return std::nullopt;
  return it->second;
}

size_t ApiKeyStore::size() const {
  absl::MutexLock lock(&mu_);
  return table_->size();
}

Authenticator::Authenticator(const ApiKeyStore* keys, std::string anonymous_tenant)
    : keys_(keys), anonymous_tenant_(std::move(anonymous_tenant)) {}

absl::StatusOr<std::string> Authenticator::Authenticate(
    std::optional<absl::string_view> authorization) const {
  if (keys_ == nullptr) return anonymous_tenant_;
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "missing API key: send metadata `authorization: Bearer <key>`");
  }
  absl::string_view value = absl::StripAsciiWhitespace(*authorization);
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWithIgnoreCase(value, kBearer)) {
    return absl::UnauthenticatedError(
        "malformed authorization metadata: expected `Bearer <key>`");
  }
  absl::string_view key = absl::StripAsciiWhitespace(value.substr(kBearer.size()));
  std::optional<std::string> tenant = keys_->TenantForKey(key);
  if (!tenant.has_value()) return absl::UnauthenticatedError("unknown API key");
  return *std::move(tenant);
}

}  // namespace phi3::service
