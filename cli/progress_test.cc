#include "cli/progress.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kGiB = int64_t{1} << 30;

// What `report` drew through a Progress on a terminal or not.
template <typename Report>
std::string Drawn(bool terminal, Report report) {
  std::FILE* f = std::tmpfile();
  {
    Progress p("prog", f, terminal ? 1 : 0);
    report(p);
  }
  std::rewind(f);
  std::string out;
  for (int c; (c = std::fgetc(f)) != EOF;) out.push_back(static_cast<char>(c));
  std::fclose(f);
  return out;
}

void PackThenMap(Progress& p) {
  const int64_t total = 2 * kGiB;
  for (int i = 0; i <= 100; ++i) p.Update("packing weights", i * total / 100, total);
  p.Update("mapping", 3 << 20, 3 << 20);  // done at once
}

TEST(Progress, PlainLinesEveryQuarterWhenNotATerminal) {
  const std::string out = Drawn(false, PackThenMap);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_THAT(out, HasSubstr("prog: packing weights 0% (0 KiB of 2.0 GiB)\n"));
  EXPECT_THAT(out, HasSubstr("prog: packing weights 25% (512 MiB of 2.0 GiB)\n"));
  EXPECT_THAT(out, HasSubstr("prog: packing weights 100% (2.0 GiB of 2.0 GiB) in "));
  EXPECT_THAT(out, HasSubstr("prog: mapping 100% (3 MiB of 3 MiB)\n"));  // no duration
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 6);  // 0, 25, 50, 75, 100% + mapping
}

TEST(Progress, OneRewrittenLineAndAFinalLinePerStageOnATerminal) {
  const std::string out = Drawn(true, PackThenMap);
  EXPECT_THAT(out, HasSubstr("\r\033[Kprog: packing weights 0% (0 KiB of 2.0 GiB)"));
  EXPECT_THAT(out, HasSubstr("\r\033[Kprog: packing weights 100% (2.0 GiB of 2.0 GiB) in "));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2);  // one per stage
  EXPECT_EQ(out.back(), '\n');
}

TEST(Progress, ConcurrentStagesShareTheTerminalLine) {
  const std::string out = Drawn(true, [](Progress& p) {
    p.Update("packing weights", 0, kGiB);
    p.Update("hashing", 0, 2 * kGiB);
    absl::SleepFor(absl::Milliseconds(150));  // past the redraw limit
    p.Update("hashing", kGiB, 2 * kGiB);
    p.Update("packing weights", kGiB, kGiB);
    p.Update("hashing", 2 * kGiB, 2 * kGiB);
  });
  EXPECT_THAT(out, HasSubstr("prog: packing weights 0% (0 KiB of 1.0 GiB); hashing 50% "
                             "(1.0 GiB of 2.0 GiB)"));
  // Packing's final line, then hashing alone again.
  EXPECT_THAT(out, HasSubstr("packing weights 100% (1.0 GiB of 1.0 GiB) in "));
  EXPECT_THAT(out, HasSubstr(" s\n\r\033[Kprog: hashing 50% (1.0 GiB of 2.0 GiB)"));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2);
}

TEST(Progress, ThreadsReportingDifferentStagesEachEndTheirs) {
  const std::string out = Drawn(false, [](Progress& p) {
    ProgressCallback callback = p.Callback();
    std::thread hashing([&callback] {
      for (int i = 0; i <= 64; ++i) callback("hashing", i * (kGiB / 64), kGiB);
    });
    for (int i = 0; i <= 64; ++i) callback("packing weights", i * (kGiB / 64), kGiB);
    hashing.join();
  });
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 10);  // 5 lines per stage
  EXPECT_THAT(out, HasSubstr("prog: hashing 100% (1.0 GiB of 1.0 GiB) in "));
  EXPECT_THAT(out, HasSubstr("prog: packing weights 100% (1.0 GiB of 1.0 GiB) in "));
  EXPECT_THAT(out, Not(HasSubstr("prog: prog:")));
}

}  // namespace
}  // namespace phi3::cli
