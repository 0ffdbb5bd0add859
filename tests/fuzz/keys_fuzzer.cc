// The API keys file parser and the `authorization` value parser.
// Properties: the parser never crashes; a table it accepts has at least one
// key, 32-byte digests, 12-digit key ids and a policy for every tenant; an
// error has a code and a message. Authenticate accepts exactly
// "<Bearer in any case> <key>".
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "service/auth.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using phi3::service::ApiKeyStore;
using phi3::service::Authenticator;

constexpr absl::string_view kKey = "k3y-Of_fuzz";

const Authenticator& FixedAuthenticator() {
  static const Authenticator* auth = [] {
    char path[] = "/tmp/phi3_keys_fuzzer_XXXXXX";
    const int fd = mkstemp(path);
    FUZZ_CHECK(fd >= 0);
    close(fd);
    std::ofstream(path) << kKey << " tenant group=g streams=2\n";
    auto store = ApiKeyStore::Load(path);
    unlink(path);
    FUZZ_CHECK(store.ok());
    return new Authenticator(store->release());
  }();
  return *auth;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<phi3::service::KeyTable> table = phi3::service::ParseApiKeys(input);
  if (table.ok()) {
    FUZZ_CHECK(!table->by_digest.empty());
    for (const auto& [digest, entry] : table->by_digest) {
      FUZZ_CHECK(digest.size() == 32);
      FUZZ_CHECK(entry.key_id.size() == 12);
      FUZZ_CHECK(!entry.tenant.empty());
      FUZZ_CHECK(table->tenants.contains(entry.tenant));
    }
    for (const auto& [tenant, policy] : table->tenants) {
      FUZZ_CHECK(policy.limits.max_streams >= 0);
      FUZZ_CHECK(policy.limits.tokens_per_minute >= 0);
      FUZZ_CHECK(policy.limits.tokens_per_day >= 0);
    }
  } else {
    FUZZ_CHECK(table.status().code() == absl::StatusCode::kInvalidArgument ||
               table.status().code() == absl::StatusCode::kFailedPrecondition);
    FUZZ_CHECK(!table.status().message().empty());
  }

  absl::StatusOr<phi3::service::Caller> caller = FixedAuthenticator().Authenticate(input);
  const bool well_formed = input.size() == 7 + kKey.size() &&
                           absl::EqualsIgnoreCase(input.substr(0, 7), "bearer ") &&
                           input.substr(7) == kKey;
  FUZZ_CHECK(caller.ok() == well_formed);
  if (caller.ok()) FUZZ_CHECK(caller->tenant == "tenant" && caller->share_group == "g");
  return 0;
}
