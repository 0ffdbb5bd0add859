#include "service/accounting.h"

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace phi3::service {
namespace {

TEST(AccountingTest, RequestIdsAreUniqueHex) {
  absl::flat_hash_set<std::string> ids;
  for (int i = 0; i < 10000; ++i) {
    const std::string id = NewRequestId();
    ASSERT_EQ(id.size(), 32u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 10000u);
}

TEST(AccountingTest, EngineStopsBeforeTheCallDeadline) {
  const absl::Time t = absl::FromUnixSeconds(1000);
  EXPECT_EQ(EngineDeadline(t), t - absl::Milliseconds(50));
  EXPECT_EQ(EngineDeadline(absl::InfiniteFuture()), absl::InfiniteFuture());
}

TEST(AccountingTest, ACancelAtTheDeadlineIsADeadline) {
  EXPECT_EQ(ReportedReason(FinishReason::kCancelled, true), FinishReason::kDeadline);
  EXPECT_EQ(ReportedReason(FinishReason::kCancelled, false), FinishReason::kCancelled);
  EXPECT_EQ(ReportedReason(FinishReason::kLength, true), FinishReason::kLength);
  EXPECT_EQ(ReportedReason(FinishReason::kDeadline, false), FinishReason::kDeadline);
  EXPECT_STREQ(ReasonLabel(FinishReason::kStopSequence), "stop_sequence");
  EXPECT_STREQ(ReasonLabel(FinishReason::kDeadline), "deadline");
}

TEST(AccountingTest, UsageRecordCarriesEveryField) {
  FinishedRequest f;
  f.request_id = "r1";
  f.tenant = "acme";
  f.key_id = "0123456789ab";
  f.api = "grpc";
  f.reason = FinishReason::kDeadline;
  f.status_code = "DEADLINE_EXCEEDED";
  f.usage = {12, 4, 3};
  f.cost_usd = 2.5e-5;
  f.timings = {absl::Milliseconds(1), absl::Milliseconds(2.5), absl::Milliseconds(40)};
  const absl::Time at = absl::FromUnixMicros(1'764'720'000'123'456);
  const ledger::UsageRecord r = ToUsageRecord(f, "beef", at);
  EXPECT_EQ(r.request_id, "r1");
  EXPECT_EQ(r.finished_at, at);
  EXPECT_EQ(r.tenant, "acme");
  EXPECT_EQ(r.key_id, "0123456789ab");
  EXPECT_EQ(r.model_sha256, "beef");
  EXPECT_EQ(r.prompt_tokens, 12);
  EXPECT_EQ(r.cached_prompt_tokens, 4);
  EXPECT_EQ(r.completion_tokens, 3);
  EXPECT_EQ(r.cost_usd, 2.5e-5);
  EXPECT_EQ(r.finish_reason, "deadline");
  EXPECT_EQ(r.status_code, "DEADLINE_EXCEEDED");
  EXPECT_DOUBLE_EQ(r.queue_ms, 1);
  EXPECT_DOUBLE_EQ(r.ttft_ms, 2.5);
  EXPECT_DOUBLE_EQ(r.total_ms, 40);
}

}  // namespace
}  // namespace phi3::service
