// The ledger's queue, spill and write-back logic against an in-memory store
// that can be taken down, and the spill file's crash handling.
#include "service/ledger/usage_ledger.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3::ledger {
namespace {

using ::testing::HasSubstr;

UsageRecord MakeRecord(int i, const std::string& tenant = "acme") {
  UsageRecord r;
  r.request_id = absl::StrCat("req-", i);
  r.finished_at = absl::FromUnixMicros(1'700'000'000'000'000 + i);
  r.tenant = tenant;
  r.key_id = "0123456789ab";
  r.api = "grpc";
  r.model_sha256 = std::string(64, 'f');
  r.prompt_tokens = 10 + i;
  r.cached_prompt_tokens = i % 3;
  r.completion_tokens = 5 + i;
  r.cost_usd = (10 + i) * 1e-6 + (5 + i) * 4e-6;
  r.finish_reason = "length";
  r.status_code = "OK";
  r.queue_ms = 0.5;
  r.ttft_ms = 3.25;
  r.total_ms = 12.0 + i;
  return r;
}

// Keyed by request_id like the SQL stores; Append fails while down. The
// test keeps a pointer to it while the ledger owns it.
class FakeStore : public LedgerStore {
 public:
  absl::Status Append(absl::Span<const UsageRecord> records) override {
    absl::MutexLock lock(&mu_);
    ++num_appends_;
    if (down_) return absl::UnavailableError("fake database is down");
    if (gate_ != nullptr) {
      absl::Notification* gate = gate_;
      gate_ = nullptr;
      mu_.Unlock();
      gate->WaitForNotification();
      mu_.Lock();
    }
    for (const UsageRecord& r : records) rows_.emplace(r.request_id, r);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<ReportRow>> Report(const ReportQuery&) override {
    return absl::UnimplementedError("not needed");
  }
  std::string Describe() const override { return "fake"; }

  void set_down(bool down) {
    absl::MutexLock lock(&mu_);
    down_ = down;
  }
  // The next Append waits for `gate` before storing.
  void BlockNextAppend(absl::Notification* gate) {
    absl::MutexLock lock(&mu_);
    gate_ = gate;
  }
  std::map<std::string, UsageRecord> rows() const {
    absl::MutexLock lock(&mu_);
    return rows_;
  }
  int num_appends() const {
    absl::MutexLock lock(&mu_);
    return num_appends_;
  }

 private:
  mutable absl::Mutex mu_;
  bool down_ = false;
  absl::Notification* gate_ = nullptr;
  int num_appends_ = 0;
  std::map<std::string, UsageRecord> rows_;
};

class UsageLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spill_path_ = absl::StrCat(::testing::TempDir(), "/usage_ledger_test_", getpid(), "_",
                               ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                               ".spill");
    std::remove(spill_path_.c_str());
  }
  void TearDown() override { std::remove(spill_path_.c_str()); }

  std::unique_ptr<UsageLedger> NewLedger(FakeStore** store, int max_queue = 10000) {
    auto owned = std::make_unique<FakeStore>();
    *store = owned.get();
    UsageLedgerOptions options;
    options.spill_path = spill_path_;
    options.max_queue_records = max_queue;
    options.max_batch_records = 8;
    options.min_retry = absl::Milliseconds(5);
    options.max_retry = absl::Milliseconds(20);
    options.log = [this](absl::string_view m) {
      absl::MutexLock lock(&log_mu_);
      absl::StrAppend(&log_, m, "\n");
    };
    return std::make_unique<UsageLedger>(std::move(owned), options);
  }

  // Polls `done` for up to 10 s.
  template <typename F>
  static bool Eventually(F done) {
    for (int i = 0; i < 1000 && !done(); ++i) absl::SleepFor(absl::Milliseconds(10));
    return done();
  }

  int64_t SpillLines() const {
    std::ifstream in(spill_path_);
    int64_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  }
  std::string log() {
    absl::MutexLock lock(&log_mu_);
    return log_;
  }

  std::string spill_path_;
  absl::Mutex log_mu_;
  std::string log_;
};

TEST_F(UsageLedgerTest, RecordsReachTheStoreBeforeTheirCallbacks) {
  FakeStore* store;
  auto ledger = NewLedger(&store);
  std::atomic<int> stored{0};
  std::atomic<bool> callback_before_store{false};
  for (int i = 0; i < 100; ++i) {
    ledger->Record(MakeRecord(i), [&, i] {
      if (store->rows().count(absl::StrCat("req-", i)) == 0) callback_before_store = true;
      ++stored;
    });
  }
  ledger->Flush();
  EXPECT_EQ(stored.load(), 100);
  EXPECT_FALSE(callback_before_store.load());
  ASSERT_EQ(store->rows().size(), 100u);
  EXPECT_EQ(store->rows().at("req-7"), MakeRecord(7));
  LedgerStats s = ledger->Stats();
  EXPECT_EQ(s.records_written, 100);
  EXPECT_EQ(s.records_spilled, 0);
  EXPECT_EQ(s.queue_depth, 0);
  EXPECT_TRUE(s.database_up);
  EXPECT_GE(store->num_appends(), 100 / 8);  // batches of at most 8
}

TEST_F(UsageLedgerTest, DownDatabaseSpillsThenWritesBack) {
  FakeStore* store;
  auto ledger = NewLedger(&store);
  store->set_down(true);
  std::atomic<int> stored{0};
  for (int i = 0; i < 50; ++i) ledger->Record(MakeRecord(i), [&] { ++stored; });
  ledger->Flush();
  EXPECT_EQ(stored.load(), 50);  // durable in the spill file: callers go on
  EXPECT_EQ(SpillLines(), 50);
  LedgerStats s = ledger->Stats();
  EXPECT_EQ(s.records_spilled, 50);
  EXPECT_EQ(s.spilled_pending, 50);
  EXPECT_GE(s.write_errors, 1);
  EXPECT_FALSE(s.database_up);
  EXPECT_TRUE(store->rows().empty());
  EXPECT_THAT(log(), HasSubstr("spilling to " + spill_path_));

  store->set_down(false);
  ASSERT_TRUE(Eventually([&] { return ledger->Stats().spilled_pending == 0; }));
  ASSERT_EQ(store->rows().size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(store->rows().at(absl::StrCat("req-", i)), MakeRecord(i));
  EXPECT_EQ(SpillLines(), 0);
  EXPECT_EQ(ledger->Stats().records_written, 50);
  EXPECT_TRUE(ledger->Stats().database_up);
  EXPECT_THAT(log(), HasSubstr("takes writes again"));
}

TEST_F(UsageLedgerTest, SpillFileIsWrittenBackByTheNextRun) {
  {
    FakeStore* store;
    auto ledger = NewLedger(&store);
    store->set_down(true);
    for (int i = 0; i < 20; ++i) ledger->Record(MakeRecord(i), nullptr);
  }  // stops with the database still down
  EXPECT_EQ(SpillLines(), 20);
  FakeStore* store;
  auto ledger = NewLedger(&store);
  ASSERT_TRUE(Eventually([&] { return store->rows().size() == 20; }));
  ASSERT_TRUE(Eventually([&] { return ledger->Stats().spilled_pending == 0; }));
  EXPECT_EQ(SpillLines(), 0);
  EXPECT_THAT(log(), HasSubstr("20 records in " + spill_path_ + " from an earlier run"));
}

TEST_F(UsageLedgerTest, TornAndCorruptSpillLinesAreSkipped) {
  {
    std::ofstream out(spill_path_);
    out << ToJsonLine(MakeRecord(1)) << "\n"
        << "{\"not\": \"a record\"}\n"
        << ToJsonLine(MakeRecord(2)) << "\n"
        << ToJsonLine(MakeRecord(3)).substr(0, 40);  // cut short by a crash
  }
  FakeStore* store;
  auto ledger = NewLedger(&store);
  ASSERT_TRUE(Eventually([&] { return ledger->Stats().spilled_pending == 0; }));
  EXPECT_EQ(store->rows().size(), 2u);
  EXPECT_EQ(store->rows().count("req-1"), 1u);
  EXPECT_EQ(store->rows().count("req-2"), 1u);
  EXPECT_EQ(ledger->Stats().corrupt_spill_lines, 1);
  EXPECT_EQ(SpillLines(), 0);
}

TEST_F(UsageLedgerTest, NewRecordsKeepFlowingWhileALongSpillIsWrittenBack) {
  FakeStore* store;
  auto ledger = NewLedger(&store);
  store->set_down(true);
  for (int i = 0; i < 200; ++i) ledger->Record(MakeRecord(i), nullptr);
  ledger->Flush();
  store->set_down(false);
  absl::Notification stored;
  ledger->Record(MakeRecord(1000), [&] { stored.Notify(); });
  // Write-back goes 8 records per new batch: the new record is not stuck
  // behind all 200.
  ASSERT_TRUE(stored.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(Eventually([&] { return ledger->Stats().spilled_pending == 0; }));
  EXPECT_EQ(store->rows().size(), 201u);
}

TEST_F(UsageLedgerTest, FullQueueDropsWithoutBlocking) {
  FakeStore* store;
  auto ledger = NewLedger(&store, /*max_queue=*/4);
  absl::Notification gate;
  store->BlockNextAppend(&gate);
  std::atomic<int> stored{0};
  ledger->Record(MakeRecord(0), [&] { ++stored; });
  ASSERT_TRUE(Eventually([&] { return ledger->Stats().queue_depth == 0; }));  // writer blocked
  for (int i = 1; i <= 4; ++i) ledger->Record(MakeRecord(i), [&] { ++stored; });
  const absl::Time start = absl::Now();
  ledger->Record(MakeRecord(5), [&] { ++stored; });  // queue full
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(stored.load(), 1);  // only the dropped one, at once
  EXPECT_EQ(ledger->Stats().records_dropped, 1);
  EXPECT_THAT(log(), HasSubstr("queue full"));
  gate.Notify();
  ledger->Flush();
  EXPECT_EQ(stored.load(), 6);
  EXPECT_EQ(store->rows().size(), 5u);
}

TEST_F(UsageLedgerTest, ASpillFileHeldByAnotherProcessIsLeftAlone) {
  absl::StatusOr<std::unique_ptr<SpillFile>> other = SpillFile::Open(spill_path_);
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE((*other)->Append({MakeRecord(1)}).ok());
  // flock locks are per open file description: a second open in this
  // process conflicts just like another process would.
  absl::StatusOr<std::unique_ptr<SpillFile>> again = SpillFile::Open(spill_path_);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("--usage-ledger-spill"));

  FakeStore* store;
  auto ledger = NewLedger(&store);
  ledger->Record(MakeRecord(2), nullptr);
  ledger->Flush();
  EXPECT_EQ(store->rows().size(), 1u);  // its own record, not the other's spill
  EXPECT_THAT(log(), HasSubstr("not writing back"));
  store->set_down(true);
  ledger->Record(MakeRecord(3), nullptr);
  ledger->Flush();
  EXPECT_EQ(ledger->Stats().records_dropped, 1);  // nowhere to spill
}

TEST(UsageRecordTest, JsonLineRoundTrip) {
  UsageRecord r = MakeRecord(42, "t\xc3\xa9nant \"quoted\"\n");
  const std::string line = ToJsonLine(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  absl::StatusOr<UsageRecord> back = FromJsonLine(line);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(FromJsonLine("{}").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(FromJsonLine("garbage").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace phi3::ledger
