#include "service/restore_daily_usage.h"

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/ledger/ledger_store.h"
#include "service/ledger/testing/records.h"

namespace phi3::service {
namespace {

using ledger::testing::kDay1;
using ledger::testing::Rec;
using ::testing::HasSubstr;

class RestoreDailyUsageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/restore_daily_usage_test_", getpid());
    std::filesystem::create_directories(dir_);
    auto store = ledger::OpenLedgerStore("sqlite:" + dir_ + "/u.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  TenantLimiter MakeLimiter() {
    TenantLimiterOptions options;
    options.default_max_streams = 0;
    options.clock = [this] { return now_; };
    return TenantLimiter(options);
  }
  static Caller Tenant(const char* name, int64_t tokens_per_day) {
    Caller c;
    c.tenant = name;
    c.limits.tokens_per_day = tokens_per_day;
    return c;
  }

  std::string dir_;
  std::unique_ptr<ledger::LedgerStore> store_;
  absl::Time now_ = kDay1 + absl::Hours(15);
};

TEST_F(RestoreDailyUsageTest, TodaysTokensCountAgainstTheDayBudgetAfterARestart) {
  const std::vector<ledger::UsageRecord> records = {
      // Yesterday: not counted.
      Rec("r1", "a", kDay1 - absl::Minutes(1), 5000, 0, 5000, 0),
      // Today: a used 600 + 300 (cached tokens are part of prompt_tokens).
      Rec("r2", "a", kDay1, 500, 100, 100, 0),
      Rec("r3", "a", kDay1 + absl::Hours(14), 100, 0, 200, 0),
      Rec("r4", "b", kDay1 + absl::Hours(1), 10, 0, 20, 0),
  };
  ASSERT_TRUE(store_->Append(records).ok());

  TenantLimiter limiter = MakeLimiter();
  absl::StatusOr<RestoredUsage> restored = RestoreDailyUsage(*store_, limiter, now_);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->tenants, 2);
  EXPECT_EQ(restored->tokens, 900 + 30);

  absl::StatusOr<TenantLimiter::StreamSlot> refused = limiter.AdmitStream(Tenant("a", 900));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("used 900 of its 900 tokens per day"));
  EXPECT_TRUE(limiter.AdmitStream(Tenant("a", 901)).ok());
  EXPECT_TRUE(limiter.AdmitStream(Tenant("b", 31)).ok());
  EXPECT_FALSE(limiter.AdmitStream(Tenant("b", 30)).ok());
}

TEST_F(RestoreDailyUsageTest, RestoredTokensDoNotFillTheMinuteWindow) {
  ASSERT_TRUE(store_->Append({Rec("r1", "a", now_ - absl::Seconds(5), 700, 0, 300, 0)}).ok());
  TenantLimiter limiter = MakeLimiter();
  ASSERT_TRUE(RestoreDailyUsage(*store_, limiter, now_).ok());
  Caller a = Tenant("a", 0);
  a.limits.tokens_per_minute = 10;
  EXPECT_TRUE(limiter.AdmitStream(a).ok());
}

TEST_F(RestoreDailyUsageTest, AnEmptyLedgerRestoresNothing) {
  TenantLimiter limiter = MakeLimiter();
  absl::StatusOr<RestoredUsage> restored = RestoreDailyUsage(*store_, limiter, now_);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->tenants, 0);
  EXPECT_TRUE(limiter.AdmitStream(Tenant("a", 1)).ok());
}

}  // namespace
}  // namespace phi3::service
