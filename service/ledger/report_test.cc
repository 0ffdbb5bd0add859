#include "service/ledger/report.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace phi3::ledger {
namespace {

using ::testing::HasSubstr;

TEST(ReportTest, SinceAcceptsDatesTimesAndAges) {
  const absl::Time now = absl::FromUnixSeconds(1'764'763'200);  // 2025-12-03 12:00 UTC
  EXPECT_EQ(*ParseSince("", now), absl::InfinitePast());
  EXPECT_EQ(*ParseSince("2025-12-03", now), absl::FromUnixSeconds(1'764'720'000));
  EXPECT_EQ(*ParseSince("2025-12-03T10:00:00Z", now), absl::FromUnixSeconds(1'764'756'000));
  EXPECT_EQ(*ParseSince("2025-12-03T11:00:00+01:00", now), absl::FromUnixSeconds(1'764'756'000));
  EXPECT_EQ(*ParseSince("24h", now), now - absl::Hours(24));
  EXPECT_EQ(*ParseSince("90m", now), now - absl::Minutes(90));
  EXPECT_EQ(*ParseSince("7d", now), now - absl::Hours(168));
  for (const char* bad : {"yesterday", "-5h", "2025-13-40", "7days"}) {
    absl::StatusOr<absl::Time> t = ParseSince(bad, now);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(t.status().message(), HasSubstr("expected a UTC date")) << bad;
  }
}

TEST(ReportTest, GroupBy) {
  EXPECT_EQ(*ParseGroupBy("tenant"), ReportQuery::GroupBy::kTenant);
  EXPECT_EQ(*ParseGroupBy("day"), ReportQuery::GroupBy::kDay);
  EXPECT_THAT(ParseGroupBy("month").status().message(), HasSubstr("expected tenant or day"));
}

const std::vector<ReportRow> kRows = {{"acme", 2, 30, 4, 12, 0.75}, {"beta", 1, 1, 0, 0, 0.125}};

TEST(ReportTest, TableHasHeaderRowsAndTotal) {
  const std::string table = FormatReportTable(kRows, ReportQuery::GroupBy::kTenant);
  EXPECT_THAT(table, HasSubstr("TENANT"));
  EXPECT_THAT(table, HasSubstr("COST_USD"));
  EXPECT_THAT(table, ::testing::ContainsRegex("acme +2 +30 +4 +12 +0.750000"));
  EXPECT_THAT(table, ::testing::ContainsRegex("TOTAL +3 +31 +4 +12 +0.875000"));
  EXPECT_THAT(FormatReportTable({}, ReportQuery::GroupBy::kDay),
              ::testing::ContainsRegex("DAY .*\nTOTAL +0 "));
}

TEST(ReportTest, JsonHasRowsAndTotal) {
  ReportQuery query{ReportQuery::GroupBy::kTenant, absl::FromUnixSeconds(1'764'720'000)};
  const nlohmann::json j = nlohmann::json::parse(FormatReportJson(kRows, query));
  EXPECT_EQ(j["by"], "tenant");
  EXPECT_EQ(j["since"], "2025-12-03T00:00:00+00:00");
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][0]["tenant"], "acme");
  EXPECT_EQ(j["rows"][0]["prompt_tokens"], 30);
  EXPECT_EQ(j["total"]["requests"], 3);
  EXPECT_DOUBLE_EQ(j["total"]["cost_usd"].get<double>(), 0.875);
  EXPECT_TRUE(nlohmann::json::parse(FormatReportJson({}, {}))["since"].is_null());
}

}  // namespace
}  // namespace phi3::ledger
