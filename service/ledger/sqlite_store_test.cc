// The SQLite store on a real file, and the ledger writing to it.
#include "service/ledger/sqlite_store.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/ledger/testing/records.h"
#include "service/ledger/usage_ledger.h"

namespace phi3::ledger {
namespace {

using ::phi3::ledger::testing::kDay1;
using ::phi3::ledger::testing::Rec;
using ::testing::HasSubstr;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/sqlite_store_test_", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(SqliteStoreTest, UsesWalAndSurvivesReopen) {
  const std::string path = dir_ + "/ledger.db";
  {
    auto store = SqliteStore::Open(path);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Append({Rec("x", "t", kDay1, 1, 0, 1, 0.1)}).ok());
    // Readers of another connection (phi3-usage) see committed rows while the
    // writer keeps the database open; WAL keeps a -wal file meanwhile.
    EXPECT_TRUE(std::filesystem::exists(path + "-wal"));
    auto reader = SqliteStore::Open(path);
    ASSERT_TRUE(reader.ok());
    auto rows = (*reader)->Report({});
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), 1u);
  }
  auto store = SqliteStore::Open(path);
  ASSERT_TRUE(store.ok());
  auto rows = (*store)->Report({});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].requests, 1);
}

TEST_F(SqliteStoreTest, OpenErrorsNameThePath) {
  auto missing_dir = SqliteStore::Open(dir_ + "/no/such/dir/ledger.db");
  EXPECT_EQ(missing_dir.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(missing_dir.status().message(), HasSubstr(dir_ + "/no/such/dir/ledger.db"));
  {
    FILE* f = std::fopen((dir_ + "/not_a_db").c_str(), "w");
    std::fputs("this is not an SQLite database, just text long enough to have a header....", f);
    std::fclose(f);
  }
  auto garbage = SqliteStore::Open(dir_ + "/not_a_db");
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(SqliteStoreTest, OpenLedgerStoreParsesUris) {
  auto none = OpenLedgerStore("none");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  auto sqlite = OpenLedgerStore("sqlite:" + dir_ + "/u.db");
  ASSERT_TRUE(sqlite.ok()) << sqlite.status();
  EXPECT_EQ((*sqlite)->Describe(), "sqlite:" + dir_ + "/u.db");
  auto pg = OpenLedgerStore("postgresql://phi3:s3cret@127.0.0.1:5999/usage");
  ASSERT_TRUE(pg.ok()) << pg.status();
  EXPECT_EQ((*pg)->Describe(), "postgresql://phi3@127.0.0.1:5999/usage");  // no password
  EXPECT_EQ(OpenLedgerStore("sqlite:").status().code(), absl::StatusCode::kInvalidArgument);
  auto bad = OpenLedgerStore("mysql://root:pw@host/db");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("sqlite:PATH, postgresql://... or none"));
  EXPECT_THAT(bad.status().message(), ::testing::Not(HasSubstr("pw")));
  EXPECT_EQ(OpenLedgerStore("postgresql://host:notaport:x:/?=&").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, LedgerWritesThroughToSqlite) {
  auto store = SqliteStore::Open(dir_ + "/ledger.db");
  ASSERT_TRUE(store.ok());
  UsageLedgerOptions options;
  options.spill_path = dir_ + "/ledger.spill";
  {
    UsageLedger ledger(*std::move(store), options);
    for (int i = 0; i < 300; ++i) {
      ledger.Record(Rec(absl::StrCat("r", i), i % 2 ? "odd" : "even", kDay1, 3, 1, 2, 0.001),
                    nullptr);
    }
  }  // the destructor stores everything queued
  auto reader = SqliteStore::Open(dir_ + "/ledger.db");
  ASSERT_TRUE(reader.ok());
  auto rows = (*reader)->Report({});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].requests + (*rows)[1].requests, 300);
  EXPECT_EQ((*rows)[0].prompt_tokens, 450);
  EXPECT_FALSE(std::filesystem::exists(options.spill_path));  // never needed
}

}  // namespace
}  // namespace phi3::ledger
