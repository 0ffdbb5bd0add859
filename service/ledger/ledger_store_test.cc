// What every LedgerStore promises (ledger_store.h), checked on SQLite and on
// a real PostgreSQL server started for this test; and the ledger riding out
// a PostgreSQL outage.
#include "service/ledger/ledger_store.h"

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/ledger/testing/records.h"
#include "service/ledger/testing/test_postgres.h"
#include "service/ledger/usage_ledger.h"

namespace phi3::ledger {
namespace {

using ::phi3::ledger::testing::kDay1;
using ::phi3::ledger::testing::Rec;
using ::phi3::ledger::testing::TestPostgres;

// One PostgreSQL server for the whole binary (starting one takes seconds);
// destroyed at exit, which stops the server and removes its directory.
TestPostgres* Postgres() {
  static const std::unique_ptr<TestPostgres> pg = []() -> std::unique_ptr<TestPostgres> {
    absl::StatusOr<std::unique_ptr<TestPostgres>> created = TestPostgres::Create();
    if (!created.ok()) {
      ADD_FAILURE() << "cannot start PostgreSQL: " << created.status();
      return nullptr;
    }
    return *std::move(created);
  }();
  return pg.get();
}

class LedgerStoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/ledger_store_test_", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (GetParam() == "sqlite") {
      uri_ = "sqlite:" + dir_ + "/ledger.db";
    } else {
      ASSERT_NE(Postgres(), nullptr);
      ASSERT_TRUE(Postgres()->Start().ok());
      uri_ = Postgres()->uri();
    }
    absl::StatusOr<std::unique_ptr<LedgerStore>> store = OpenLedgerStore(uri_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_TRUE(store_->Append({}).ok());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Ids and tenant names unique to this test: the PostgreSQL table is shared
  // by every test of this binary.
  std::string Id(const std::string& name) const {
    return absl::StrCat(::testing::UnitTest::GetInstance()->current_test_info()->name(), "/",
                        name);
  }

  std::string dir_;
  std::string uri_;
  std::unique_ptr<LedgerStore> store_;
};

TEST_P(LedgerStoreContract, AppendIsIdempotentAndReportsGroup) {
  const std::string acme = Id("acme"), beta = Id("beta");
  std::vector<UsageRecord> records = {
      Rec(Id("a"), acme, kDay1 + absl::Hours(1), 10, 4, 5, 0.25),
      Rec(Id("b"), acme, kDay1 + absl::Hours(25), 20, 0, 7, 0.5),
      Rec(Id("c"), beta, kDay1 + absl::Hours(23) + absl::Minutes(59), 1, 0, 0, 0.125),
  };
  ASSERT_TRUE(store_->Append(records).ok());
  ASSERT_TRUE(store_->Append(records).ok());  // a write-back after a crash: no duplicates

  auto by_tenant = store_->Report({});
  ASSERT_TRUE(by_tenant.ok()) << by_tenant.status();
  std::map<std::string, ReportRow> rows;
  for (const ReportRow& r : *by_tenant) rows[r.group] = r;
  ASSERT_EQ(rows.count(acme), 1u);
  EXPECT_EQ(rows[acme].requests, 2);
  EXPECT_EQ(rows[acme].prompt_tokens, 30);
  EXPECT_EQ(rows[acme].cached_prompt_tokens, 4);
  EXPECT_EQ(rows[acme].completion_tokens, 12);
  EXPECT_DOUBLE_EQ(rows[acme].cost_usd, 0.75);
  EXPECT_EQ(rows[beta].requests, 1);
  EXPECT_TRUE(std::is_sorted(by_tenant->begin(), by_tenant->end(),
                             [](const ReportRow& a, const ReportRow& b) { return a.group < b.group; }));

  ReportQuery by_day{ReportQuery::GroupBy::kDay, kDay1};
  auto days = store_->Report(by_day);
  ASSERT_TRUE(days.ok()) << days.status();
  std::map<std::string, ReportRow> day_rows;
  for (const ReportRow& r : *days) day_rows[r.group] = r;
  EXPECT_EQ(day_rows["2025-12-03"].requests, 2);  // a, and c at 23:59 UTC
  EXPECT_EQ(day_rows["2025-12-04"].requests, 1);
  EXPECT_EQ(day_rows["2025-12-04"].prompt_tokens, 20);

  ReportQuery since{ReportQuery::GroupBy::kTenant, kDay1 + absl::Hours(2)};
  auto recent = store_->Report(since);
  ASSERT_TRUE(recent.ok());
  std::map<std::string, ReportRow> recent_rows;
  for (const ReportRow& r : *recent) recent_rows[r.group] = r;
  EXPECT_EQ(recent_rows[acme].requests, 1);  // only b
  EXPECT_EQ(recent_rows[acme].prompt_tokens, 20);
}

TEST_P(LedgerStoreContract, StoresEveryFieldAndOddText) {
  UsageRecord r = Rec(Id("odd"), Id("t\xc3\xa9nant 'quoted' \"x\"; DROP TABLE usage_ledger;--"),
                      kDay1 - absl::Hours(240) + absl::Microseconds(123456), 7, 3, 2, 1.0 / 3);
  ASSERT_TRUE(store_->Append({r}).ok());
  auto rows = store_->Report({});
  ASSERT_TRUE(rows.ok()) << rows.status();
  bool found = false;
  for (const ReportRow& row : *rows) {
    if (row.group != r.tenant) continue;
    found = true;
    EXPECT_EQ(row.prompt_tokens, 7);
    EXPECT_DOUBLE_EQ(row.cost_usd, 1.0 / 3);  // full double precision
  }
  EXPECT_TRUE(found);
}

INSTANTIATE_TEST_SUITE_P(Stores, LedgerStoreContract,
                         ::testing::Values(std::string("sqlite"), std::string("postgresql")),
                         [](const auto& info) { return info.param; });

TEST(PostgresOutage, LedgerSpillsWhileDownAndWritesBackWhenUp) {
  ASSERT_NE(Postgres(), nullptr);
  ASSERT_TRUE(Postgres()->Start().ok());
  const std::string dir = absl::StrCat(::testing::TempDir(), "/ledger_pg_outage_", getpid());
  std::filesystem::create_directories(dir);
  UsageLedgerOptions options;
  options.spill_path = dir + "/spill";
  options.min_retry = absl::Milliseconds(20);
  options.max_retry = absl::Milliseconds(200);
  options.log = [](absl::string_view) {};
  const std::string tenant = "outage-tenant";
  const absl::Time at = kDay1 - absl::Hours(24 * 365);  // not a day the contract test reports
  UsageLedger ledger(*OpenLedgerStore(Postgres()->uri()), options);
  for (int i = 0; i < 10; ++i) {
    ledger.Record(Rec(absl::StrCat("outage-up-", i), tenant, at, 1, 0, 1, 0.5), nullptr);
  }
  ledger.Flush();
  EXPECT_EQ(ledger.Stats().records_written, 10);

  ASSERT_TRUE(Postgres()->Stop().ok());
  for (int i = 0; i < 25; ++i) {
    ledger.Record(Rec(absl::StrCat("outage-down-", i), tenant, at, 1, 0, 1, 0.5), nullptr);
  }
  ledger.Flush();  // bounded: a refused connection fails at once
  LedgerStats down = ledger.Stats();
  EXPECT_FALSE(down.database_up);
  EXPECT_EQ(down.records_spilled, 25);
  EXPECT_EQ(down.spilled_pending, 25);
  EXPECT_EQ(down.records_dropped, 0);

  ASSERT_TRUE(Postgres()->Start().ok());
  const absl::Time end = absl::Now() + absl::Seconds(20);
  while (ledger.Stats().spilled_pending > 0 && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(ledger.Stats().spilled_pending, 0);
  EXPECT_TRUE(ledger.Stats().database_up);
  std::unique_ptr<LedgerStore> reader = *OpenLedgerStore(Postgres()->uri());
  auto rows = reader->Report({});
  ASSERT_TRUE(rows.ok()) << rows.status();
  int64_t requests = 0;
  for (const ReportRow& r : *rows) {
    if (r.group == tenant) requests = r.requests;
  }
  EXPECT_EQ(requests, 35);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace phi3::ledger
