// Soak (label `soak`, run by hand; see README "Accounting"): many streams for
// minutes against the real phi3-server with the usage ledger, with random
// client cancels, deadlines and slow readers. Passes when no call fails in an
// unintended way, RSS and the KV cache come back to their baselines, and the
// ledger holds exactly one row per call.
//
// PHI3_SOAK_SECONDS (default 600) and PHI3_SOAK_STREAMS (default 64).
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "service/ledger/ledger_store.h"
#include "tests/integration/test_env.h"

namespace phi3::integration {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  int n = 0;
  return value != nullptr && absl::SimpleAtoi(value, &n) && n > 0 ? n : fallback;
}

// Resident set size of `pid` in MiB.
double RssMiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return -1;
}

enum class Kind { kComplete, kCancel, kDeadline, kSlowReader };
const char* KindName(Kind k) {
  switch (k) {
    case Kind::kComplete: return "complete";
    case Kind::kCancel: return "cancel";
    case Kind::kDeadline: return "deadline";
    case Kind::kSlowReader: return "slow_reader";
  }
  return "?";
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    default: return "OTHER";
  }
}

// The codes a call of each kind may end with.
bool Intended(Kind kind, grpc::StatusCode code) {
  switch (kind) {
    case Kind::kComplete:
      return code == grpc::StatusCode::OK;
    case Kind::kCancel:  // the cancel may land after the last token
      return code == grpc::StatusCode::CANCELLED || code == grpc::StatusCode::OK;
    case Kind::kDeadline:
      return code == grpc::StatusCode::DEADLINE_EXCEEDED || code == grpc::StatusCode::OK;
    case Kind::kSlowReader:  // too slow: the server gives up on it
      return code == grpc::StatusCode::OK || code == grpc::StatusCode::RESOURCE_EXHAUSTED;
  }
  return false;
}

TEST(Soak, StreamsWithCancelsDeadlinesAndSlowReaders) {
  const int seconds = EnvInt("PHI3_SOAK_SECONDS", 600);
  const int streams = EnvInt("PHI3_SOAK_STREAMS", 64);
  const std::string uri = "sqlite:" + ScratchDir() + "/soak.db";
  std::vector<std::string> args = BasicServerArgs();
  args.push_back("--usage-ledger=" + uri);
  args.push_back("--usage-ledger-spill=" + ScratchDir() + "/soak.spill");
  args.push_back("--max-buffered-tokens=48");
  args.push_back("--max-waiting=1024");
  auto server = ServerProcess::Start(GetTools().server, args);
  ASSERT_TRUE(server.ok()) << server.status();
  auto scrape = [&] { return ParseMetrics(*HttpGet((*server)->metrics_address(), "/metrics")); };
  auto idle = [&](std::map<std::string, double>* m) {
    for (int i = 0; i < 500; ++i) {
      *m = scrape();
      if (SumMetric(*m, "phi3_active_streams") == 0 &&
          SumMetric(*m, "phi3_engine_running_requests") == 0 &&
          SumMetric(*m, "phi3_engine_waiting_requests") == 0 &&
          SumMetric(*m, "phi3_ledger_queue_depth") == 0) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  };

  // Warm-up, so that the baseline includes the allocator's and gRPC's
  // steady state, then the baseline.
  {
    auto stub = NewStub((*server)->address());
    for (int i = 0; i < 3 * streams; ++i) {
      ASSERT_TRUE(GenerateAll(*stub, Greedy(absl::StrCat("warm ", i), 8)).status.ok());
    }
  }
  std::map<std::string, double> before;
  ASSERT_TRUE(idle(&before));
  const double rss_before = RssMiB((*server)->pid());
  const double kv_before = SumMetric(before, "phi3_kv_cache_used_blocks");
  const double calls_before = SumMetric(before, "phi3_requests_total");

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, int> outcomes;  // "kind CODE" -> count
  int unintended = 0;
  int64_t calls = 0;
  std::vector<std::thread> threads;
  const absl::Time end = absl::Now() + absl::Seconds(seconds);
  for (int t = 0; t < streams; ++t) {
    threads.emplace_back([&, t] {
      auto stub = NewStub((*server)->address());
      std::mt19937 rng(1000 + t);
      while (absl::Now() < end) {
        const int r = rng() % 100;
        const Kind kind = r < 50 ? Kind::kComplete
                          : r < 65 ? Kind::kCancel
                          : r < 80 ? Kind::kDeadline
                                   : Kind::kSlowReader;
        v1::GenerateRequest req = Greedy(absl::StrCat("soak ", t, " ", rng() % 100000),
                                         kind == Kind::kSlowReader ? 96 : 8 + rng() % 56);
        req.mutable_stop()->set_ignore_eos(true);
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::milliseconds(kind == Kind::kDeadline ? 20 + rng() % 480
                                                                               : 120000));
        auto reader = stub->Generate(&context, req);
        v1::GenerateResponse m;
        int received = 0;
        const int cancel_after = 1 + rng() % 8;
        while (reader->Read(&m)) {
          received += m.token_ids_size();
          if (kind == Kind::kCancel && received >= cancel_after) context.TryCancel();
          if (kind == Kind::kSlowReader) absl::SleepFor(absl::Milliseconds(20 + rng() % 80));
        }
        const grpc::StatusCode code = reader->Finish().error_code();
        std::lock_guard<std::mutex> lock(mu);
        ++calls;
        ++outcomes[absl::StrCat(KindName(kind), " ", CodeName(code))];
        unintended += Intended(kind, code) ? 0 : 1;
      }
    });
  }
  for (auto& th : threads) th.join();

  std::map<std::string, double> after;
  ASSERT_TRUE(idle(&after));
  absl::SleepFor(absl::Seconds(1));  // let freed memory settle
  const double rss_after = RssMiB((*server)->pid());
  const double kv_after = SumMetric(after, "phi3_kv_cache_used_blocks");
  const double calls_served = SumMetric(after, "phi3_requests_total") - calls_before;
  const double rejected = SumMetric(after, "phi3_requests_total", {"finish_reason=\"rejected\""});
  auto store = ledger::OpenLedgerStore(uri);
  ASSERT_TRUE(store.ok()) << store.status();
  auto rows = (*store)->Report({});
  ASSERT_TRUE(rows.ok()) << rows.status();
  int64_t ledger_rows = 0;
  for (const auto& row : *rows) ledger_rows += row.requests;
  const int64_t warmup = 3 * streams;

  std::printf("soak: %d streams x %d s: %lld calls (%.1f/s), %g tokens\n", streams, seconds,
              static_cast<long long>(calls), calls / static_cast<double>(seconds),
              SumMetric(after, "phi3_completion_tokens_total"));
  for (const auto& [what, n] : outcomes) std::printf("  %-28s %d\n", what.c_str(), n);
  std::printf("  unintended outcomes %d\n", unintended);
  std::printf("  RSS %.1f MiB -> %.1f MiB; KV blocks used %g -> %g\n", rss_before, rss_after,
              kv_before, kv_after);
  // A call whose deadline passed before the server got it never reaches the
  // handler: not a request, not billed.
  const double never_arrived = static_cast<double>(calls) - calls_served;
  std::printf("  ledger rows %lld = requests served %g + warm-up %lld; rejected %g; calls whose "
              "deadline passed before they reached the server %g\n",
              static_cast<long long>(ledger_rows), calls_served, static_cast<long long>(warmup),
              rejected, never_arrived);

  EXPECT_EQ(unintended, 0);
  EXPECT_EQ(rejected, 0);
  EXPECT_EQ(kv_after, kv_before);
  // Back to baseline: allocator caches and gRPC's pools may keep a little.
  EXPECT_LT(rss_after, rss_before * 1.10 + 16) << "RSS grew";
  EXPECT_EQ(static_cast<double>(ledger_rows), calls_served + warmup);
  EXPECT_GE(never_arrived, 0);
  EXPECT_LE(never_arrived, outcomes["deadline DEADLINE_EXCEEDED"]);
  EXPECT_EQ(SumMetric(after, "phi3_ledger_records_dropped_total"), 0);
}

}  // namespace
}  // namespace phi3::integration
