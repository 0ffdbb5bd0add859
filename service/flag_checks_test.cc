#include "service/flag_checks.h"

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3::service {
namespace {

using ::testing::HasSubstr;

TEST(FlagChecks, Ranges) {
  EXPECT_TRUE(CheckFlagRange("threads", 8, 0, 1024).ok());
  absl::Status s = CheckFlagRange("threads", 100000, 0, 1024);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "--threads must be in [0, 1024], got 100000");
  EXPECT_GE(MaxComputeThreads(), 64);
}

TEST(FlagChecks, Prices) {
  EXPECT_TRUE(CheckPriceFlag("price-input", 0).ok());
  EXPECT_TRUE(CheckPriceFlag("price-input", 2.5).ok());
  for (double bad : {-1.0, std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_THAT(CheckPriceFlag("price-input", bad).message(),
                HasSubstr("--price-input must be a finite price >= 0")) << bad;
  }
}

TEST(FlagChecks, Durations) {
  EXPECT_TRUE(CheckDurationFlag("d", absl::InfiniteDuration(), absl::Milliseconds(1), true).ok());
  EXPECT_FALSE(CheckDurationFlag("d", absl::InfiniteDuration(), absl::ZeroDuration(), false).ok());
  EXPECT_THAT(CheckDurationFlag("d", absl::ZeroDuration(), absl::Milliseconds(1), true).message(),
              HasSubstr("--d must be at least 1ms, got 0"));
}

TEST(FlagChecks, ListenAddresses) {
  EXPECT_EQ(*CheckListenFlag("listen", "127.0.0.1:50051"), 50051);
  EXPECT_EQ(*CheckListenFlag("listen", "127.0.0.1:0"), 0);
  EXPECT_EQ(*CheckListenFlag("listen", "[::1]:8080"), 8080);
  EXPECT_EQ(*CheckListenFlag("listen", "localhost:1"), 1);
  struct Case {
    const char* address;
    const char* why;
  };
  for (const Case& c : {Case{"127.0.0.1", "no port"}, Case{"127.0.0.1:", "port must be"},
                        Case{":50051", "no host"}, Case{"127.0.0.1:http", "port must be"},
                        Case{"127.0.0.1:65536", "port must be"}, Case{"127.0.0.1:-1", "port"},
                        Case{"::1:80", "brackets"}, Case{"[::1]", "brackets"},
                        Case{"127.0.0.1:0000080", "port must be"}}) {
    absl::StatusOr<int> port = CheckListenFlag("listen", c.address);
    EXPECT_EQ(port.status().code(), absl::StatusCode::kInvalidArgument) << c.address;
    EXPECT_THAT(port.status().message(), HasSubstr(c.why)) << c.address;
    EXPECT_THAT(port.status().message(), HasSubstr("--listen must be HOST:PORT")) << c.address;
  }
}

}  // namespace
}  // namespace phi3::service
