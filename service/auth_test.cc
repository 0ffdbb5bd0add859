#include "service/auth.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3::service {
namespace {

using ::testing::HasSubstr;

TEST(ParseApiKeys, ReadsPairsSkippingCommentsAndBlankLines) {
  absl::StatusOr<KeyTable> t = ParseApiKeys("# keys\n\nk1 acme\n  k2\tglobex  \n#k3 x\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->by_digest.size(), 2u);
  EXPECT_EQ(t->by_digest.at(KeyDigest("k1")).tenant, "acme");
  EXPECT_EQ(t->by_digest.at(KeyDigest("k2")).tenant, "globex");
  EXPECT_EQ(t->tenants.at("acme"), TenantPolicy{});
}

TEST(ParseApiKeys, ReadsOptions) {
  absl::StatusOr<KeyTable> t = ParseApiKeys(
      "k1 acme group=shared streams=3 tpm=1000 tpd=50000\n"
      "k2 acme\n"  // a second key of acme inherits its options
      "k3 globex group=shared\n");
  ASSERT_TRUE(t.ok()) << t.status();
  const TenantPolicy& acme = t->tenants.at("acme");
  EXPECT_EQ(acme.share_group, "shared");
  EXPECT_EQ(acme.limits.max_streams, 3);
  EXPECT_EQ(acme.limits.tokens_per_minute, 1000);
  EXPECT_EQ(acme.limits.tokens_per_day, 50000);
  EXPECT_EQ(t->tenants.at("globex").share_group, "shared");
  EXPECT_EQ(t->tenants.at("globex").limits, TenantLimits{});
}

TEST(ParseApiKeys, RejectsMissingTenantWithLineNumber) {
  absl::StatusOr<KeyTable> t = ParseApiKeys("k1 acme\nlonely\n");
  ASSERT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(t.status().message(), HasSubstr("got 1"));
}

TEST(ParseApiKeys, RejectsBadOptionsAndDuplicates) {
  struct Case {
    const char* contents;
    const char* message;
  };
  for (const Case& c : {
           Case{"a b c\n", "without '='"},
           Case{"a b color=red\n", "unknown option `color`"},
           Case{"a b streams=0\n", "streams= must be an integer in [1, "},
           Case{"a b tpm=-5\n", "got `-5`"},
           Case{"a b tpd=lots\n", "got `lots`"},
           Case{"a b group=\n", "group= needs a name"},
           Case{"k t1\nk t2\n", "line 2: duplicate key"},
           Case{"k1 t streams=2\nk2 t streams=3\n", "line 2: options for tenant t differ from "
                                                    "those on line 1"},
       }) {
    absl::StatusOr<KeyTable> t = ParseApiKeys(c.contents);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << c.contents;
    EXPECT_THAT(t.status().message(), HasSubstr(c.message)) << c.contents;
  }
  // A bad line never echoes the key.
  EXPECT_THAT(ParseApiKeys("s3cr3t-key t bogus\n").status().message(),
              ::testing::Not(HasSubstr("s3cr3t")));
}

TEST(ParseApiKeys, NoKeysIsAnError) {
  for (const char* contents : {"", "\n\n", "# only a comment\n  # another\n"}) {
    absl::StatusOr<KeyTable> t = ParseApiKeys(contents);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition) << contents;
    EXPECT_THAT(t.status().message(), HasSubstr("no API keys"));
  }
}

TEST(CacheScopeOf, TenantOrGroupInSeparateNamespaces) {
  Caller a, grouped, grouped2;
  a.tenant = "a";
  grouped.tenant = "b";
  grouped.share_group = "a";
  grouped2.tenant = "c";
  grouped2.share_group = "a";
  EXPECT_EQ(CacheScopeOf(a, false), "");
  EXPECT_EQ(CacheScopeOf(grouped, false), "");
  EXPECT_NE(CacheScopeOf(a, true), CacheScopeOf(grouped, true));  // tenant "a" != group "a"
  EXPECT_EQ(CacheScopeOf(grouped, true), CacheScopeOf(grouped2, true));
}

class ApiKeyStoreTest : public ::testing::Test {
 protected:
  void Write(const std::string& contents) { std::ofstream(path_) << contents; }
  void TearDown() override {
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }
  std::string path_ = ::testing::TempDir() + "/phi3_keys_test.txt";
  std::string dir_ = ::testing::TempDir() + "/phi3_keys_test_dir";
};

TEST_F(ApiKeyStoreTest, LoadsAndReloads) {
  Write("alpha tenant-a\n");
  absl::StatusOr<std::unique_ptr<ApiKeyStore>> store = ApiKeyStore::Load(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->CallerForKey("alpha").has_value());
  EXPECT_EQ((*store)->CallerForKey("alpha")->tenant, "tenant-a");
  EXPECT_EQ((*store)->CallerForKey("beta"), std::nullopt);
  Write("beta tenant-b tpm=10\n");
  ASSERT_TRUE((*store)->Reload().ok());
  EXPECT_EQ((*store)->CallerForKey("alpha"), std::nullopt);
  std::optional<Caller> beta = (*store)->CallerForKey("beta");
  ASSERT_TRUE(beta.has_value());
  EXPECT_EQ(beta->tenant, "tenant-b");
  EXPECT_EQ(beta->limits.tokens_per_minute, 10);
  EXPECT_EQ(beta->key_id.size(), 12u);
  EXPECT_THAT(beta->key_id, ::testing::Not(HasSubstr("beta")));
}

TEST_F(ApiKeyStoreTest, ReloadThatYieldsNoKeysKeepsTheOldOnes) {
  Write("alpha tenant-a\n");
  auto store = ApiKeyStore::Load(path_);
  ASSERT_TRUE(store.ok());
  for (const char* contents : {"broken line here\n", "", "# all commented out\n"}) {
    Write(contents);
    absl::Status s = (*store)->Reload();
    EXPECT_FALSE(s.ok()) << contents;
    EXPECT_FALSE(s.message().empty());
    EXPECT_TRUE((*store)->CallerForKey("alpha").has_value()) << contents;
  }
  // The file replaced by a directory, then removed.
  std::remove(path_.c_str());
  ASSERT_EQ(mkdir(path_.c_str(), 0700), 0);
  EXPECT_THAT((*store)->Reload().message(), HasSubstr("not a regular file"));
  rmdir(path_.c_str());
  EXPECT_EQ((*store)->Reload().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*store)->size(), 1u);
  EXPECT_TRUE((*store)->CallerForKey("alpha").has_value());
}

TEST_F(ApiKeyStoreTest, UnusableFilesDoNotLoad) {
  EXPECT_EQ(ApiKeyStore::Load("/nonexistent/keys").status().code(), absl::StatusCode::kNotFound);
  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  EXPECT_EQ(ApiKeyStore::Load(dir_).status().code(), absl::StatusCode::kNotFound);
  Write("# nothing\n");
  absl::Status empty = ApiKeyStore::Load(path_).status();
  EXPECT_EQ(empty.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(empty.message(), HasSubstr(path_));
}

TEST_F(ApiKeyStoreTest, BearerSchemeIsParsedStrictly) {
  Write("alpha tenant-a\n");
  auto store = ApiKeyStore::Load(path_);
  ASSERT_TRUE(store.ok());
  Authenticator auth(store->get());
  for (const char* ok : {"Bearer alpha", "bearer alpha", "BEARER alpha"}) {
    absl::StatusOr<Caller> caller = auth.Authenticate(ok);
    ASSERT_TRUE(caller.ok()) << ok << ": " << caller.status();
    EXPECT_EQ(caller->tenant, "tenant-a");
  }
  for (const char* bad : {"alpha", "Bearer", "Bearer ", "Bearer  alpha", "Bearer alpha ",
                          " Bearer alpha", "Bearer\talpha", "Bearer alpha extra", "Basic alpha",
                          "Bearerx alpha", "Bearer alp ha"}) {
    absl::StatusOr<Caller> caller = auth.Authenticate(bad);
    EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated) << bad;
  }
  EXPECT_EQ(auth.Authenticate(std::nullopt).status().code(), absl::StatusCode::kUnauthenticated);
  // Prefixes and extensions of a real key are just unknown keys.
  for (const char* wrong : {"Bearer alph", "Bearer alphaa", "Bearer nope"}) {
    absl::StatusOr<Caller> caller = auth.Authenticate(wrong);
    EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated) << wrong;
    EXPECT_THAT(caller.status().message(), HasSubstr("unknown API key"));
    EXPECT_THAT(caller.status().message(), ::testing::Not(HasSubstr("alph")));
  }
}

TEST(Authenticator, DisabledGivesAnonymousTenant) {
  Authenticator auth(nullptr, "local");
  EXPECT_FALSE(auth.enabled());
  absl::StatusOr<Caller> caller = auth.Authenticate(std::nullopt);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->tenant, "local");
  EXPECT_EQ(caller->limits, TenantLimits{});
}

}  // namespace
}  // namespace phi3::service
