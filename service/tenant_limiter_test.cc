#include "service/tenant_limiter.h"

#include <optional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/retry_hint.h"

namespace phi3::service {
namespace {

using ::testing::HasSubstr;

class TenantLimiterTest : public ::testing::Test {
 protected:
  TenantLimiter Make(int default_max_streams = 0) {
    TenantLimiterOptions options;
    options.default_max_streams = default_max_streams;
    options.clock = [this] { return now_; };
    return TenantLimiter(options);
  }
  static Caller Tenant(const char* name, TenantLimits limits = {}) {
    Caller c;
    c.tenant = name;
    c.limits = limits;
    return c;
  }
  // 2026-12-03 23:59:30 UTC.
  absl::Time now_ = absl::FromUnixSeconds(1796342370);
};

TEST_F(TenantLimiterTest, StreamCapPerTenantWithServerDefault) {
  TenantLimiter limiter = Make(/*default_max_streams=*/2);
  const Caller a = Tenant("a"), b = Tenant("b", {.max_streams = 3});
  auto a1 = limiter.AdmitStream(a), a2 = limiter.AdmitStream(a);
  ASSERT_TRUE(a1.ok() && a2.ok());
  absl::StatusOr<TenantLimiter::StreamSlot> a3 = limiter.AdmitStream(a);
  ASSERT_EQ(a3.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(a3.status().message(), HasSubstr("tenant a has 2 open streams, at most 2"));
  EXPECT_THAT(a3.status().message(), HasSubstr("retry in 1s"));
  EXPECT_EQ(RetryDelayOf(a3.status()), absl::Seconds(1));
  // Another tenant is not affected, and its own cap is used.
  auto b1 = limiter.AdmitStream(b), b2 = limiter.AdmitStream(b), b3 = limiter.AdmitStream(b);
  EXPECT_TRUE(b1.ok() && b2.ok() && b3.ok());
  EXPECT_FALSE(limiter.AdmitStream(b).ok());
  // Giving a slot back (also by moving over it) makes room.
  a1->Release();
  EXPECT_EQ(limiter.open_streams("a"), 1);
  auto again = limiter.AdmitStream(a);
  ASSERT_TRUE(again.ok());
  *a2 = std::move(*again);
  EXPECT_EQ(limiter.open_streams("a"), 1);
}

TEST_F(TenantLimiterTest, ZeroDefaultMeansNoStreamCap) {
  TenantLimiter limiter = Make(0);
  std::vector<TenantLimiter::StreamSlot> slots;
  for (int i = 0; i < 1000; ++i) {
    auto slot = limiter.AdmitStream(Tenant("a"));
    ASSERT_TRUE(slot.ok());
    slots.push_back(*std::move(slot));
  }
  EXPECT_EQ(limiter.open_streams("a"), 1000);
  slots.clear();
  EXPECT_EQ(limiter.open_streams("a"), 0);
}

TEST_F(TenantLimiterTest, TokensPerMinuteSlideWithTheWindow) {
  TenantLimiter limiter = Make();
  const Caller a = Tenant("a", {.tokens_per_minute = 100});
  ASSERT_TRUE(limiter.AdmitStream(a).ok());
  limiter.Charge("a", 60);  // at t
  now_ += absl::Seconds(20);
  ASSERT_TRUE(limiter.AdmitStream(a).ok());  // 60 < 100
  limiter.Charge("a", 50);  // at t+20: 110 in the window
  now_ += absl::Seconds(5);
  absl::StatusOr<TenantLimiter::StreamSlot> refused = limiter.AdmitStream(a);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("used 110 of its 100 tokens per minute"));
  // The 60 tokens of t leave the window at t+60, 35 s from now.
  EXPECT_EQ(RetryDelayOf(refused.status()), absl::Seconds(35));
  EXPECT_THAT(refused.status().message(), HasSubstr("retry in 35s"));
  now_ += absl::Seconds(35);
  EXPECT_TRUE(limiter.AdmitStream(a).ok());
  // Other tenants and unlimited tenants are not affected.
  limiter.Charge("b", 1000000);
  EXPECT_TRUE(limiter.AdmitStream(Tenant("b")).ok());
}

TEST_F(TenantLimiterTest, TokensPerDayResetAtUtcMidnight) {
  TenantLimiter limiter = Make();
  const Caller a = Tenant("a", {.tokens_per_day = 1000});
  limiter.Charge("a", 999);
  ASSERT_TRUE(limiter.AdmitStream(a).ok());
  limiter.Charge("a", 5);
  absl::StatusOr<TenantLimiter::StreamSlot> refused = limiter.AdmitStream(a);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("used 1004 of its 1000 tokens per day"));
  EXPECT_EQ(RetryDelayOf(refused.status()), absl::Seconds(30));  // 23:59:30 -> midnight
  now_ += absl::Seconds(30);
  EXPECT_TRUE(limiter.AdmitStream(a).ok());
}

}  // namespace
}  // namespace phi3::service
