#include "service/auth.h"

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
  EXPECT_EQ(t->size(), 2u);
  EXPECT_EQ(t->at("k1"), "acme");
  EXPECT_EQ(t->at("k2"), "globex");
}

TEST(ParseApiKeys, RejectsMissingTenantWithLineNumber) {
  absl::StatusOr<KeyTable> t = ParseApiKeys("k1 acme\nlonely\n");
  ASSERT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(t.status().message(), HasSubstr("got 1"));
}

TEST(ParseApiKeys, RejectsExtraFieldsAndDuplicates) {
  EXPECT_EQ(ParseApiKeys("a b c\n").status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<KeyTable> dup = ParseApiKeys("k t1\nk t2\n");
  ASSERT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dup.status().message(), HasSubstr("duplicate"));
}

class ApiKeyStoreTest : public ::testing::Test {
 protected:
  void Write(const std::string& contents) {
    std::ofstream(path_) << contents;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_ = ::testing::TempDir() + "/phi3_keys_test.txt";
};

TEST_F(ApiKeyStoreTest, LoadsAndReloads) {
  Write("alpha tenant-a\n");
  absl::StatusOr<std::unique_ptr<ApiKeyStore>> store = ApiKeyStore::Load(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->TenantForKey("alpha"), "tenant-a");
  EXPECT_EQ((*store)->TenantForKey("beta"), std::nullopt);
  Write("beta tenant-b\n");
  ASSERT_TRUE((*store)->Reload().ok());
  EXPECT_EQ((*store)->TenantForKey("alpha"), std::nullopt);
  EXPECT_EQ((*store)->TenantForKey("beta"), "tenant-b");
}

TEST_F(ApiKeyStoreTest, BadReloadKeepsOldKeys) {
  Write("alpha tenant-a\n");
  auto store = ApiKeyStore::Load(path_);
  ASSERT_TRUE(store.ok());
  Write("broken line here\n");
  EXPECT_EQ((*store)->Reload().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*store)->TenantForKey("alpha"), "tenant-a");
}

TEST_F(ApiKeyStoreTest, MissingFileIsNotFound) {
  EXPECT_EQ(ApiKeyStore::Load("/nonexistent/keys").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ApiKeyStoreTest, AuthenticatorChecksBearerKeys) {
  Write("alpha tenant-a\n");
  auto store = ApiKeyStore::Load(path_);
  ASSERT_TRUE(store.ok());
  Authenticator auth(store->get());
  EXPECT_EQ(*auth.Authenticate("Bearer alpha"), "tenant-a");
  EXPECT_EQ(*auth.Authenticate("bearer  alpha "), "tenant-a");
  EXPECT_EQ(auth.Authenticate(std::nullopt).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("alpha").status().code(), absl::StatusCode::kUnauthenticated);
  absl::StatusOr<std::string> unknown = auth.Authenticate("Bearer nope");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(unknown.status().message(), ::testing::Not(HasSubstr("nope")));
}

TEST(Authenticator, DisabledGivesAnonymousTenant) {
  Authenticator auth(nullptr, "local");
  EXPECT_FALSE(auth.enabled());
  EXPECT_EQ(*auth.Authenticate(std::nullopt), "local");
}

}  // namespace
}  // namespace phi3::service
