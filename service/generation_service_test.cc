// GenerationService's threaded core with no transport in between: client
// threads start and read requests while the fake engine's thread produces
// tokens, the usage ledger's writer thread stores records, and other threads
// cancel, drain and admit at the same time. scripts/sanitize.sh runs it under
// ThreadSanitizer; the gRPC end-to-end test (phi3_service_test.cc) cannot run
// there, because Debian's gRPC is not built with TSan.
#include "service/generation_service.h"

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "service/ledger/sqlite_store.h"
#include "service/testing/fake_engine.h"
#include "service/testing/metric_value.h"

namespace phi3::service {
namespace {

using testing::FakeEngine;
using testing::FakeEngineOptions;

// One client's side of a Generation, as a transport would hold it: Notify
// only counts, and the reader takes whatever accumulated.
struct ClientStream {
  std::shared_ptr<Generation> generation;
  std::string text;
  int messages = 0;
  v1::GenerateResponse last;  // the last chunk's message (usage, cost)
  absl::Status status;        // how the request ended, once `ended`
  bool ended = false;

  absl::Mutex mu;
  int notified ABSL_GUARDED_BY(mu) = 0;

  Generation::Notify Notifier() {
    return [this] {
      absl::MutexLock lock(&mu);
      ++notified;
    };
  }

  // Takes chunks until the last one (then releases the Generation, as a
  // transport does when its call ends) or until `budget` passes.
  void ReadToEnd(absl::Duration budget = absl::Seconds(20)) {
    const absl::Time give_up = absl::Now() + budget;
    while (!ended && absl::Now() < give_up) {
      int seen;
      {
        absl::MutexLock lock(&mu);
        seen = notified;
      }
      if (TakeAvailable()) continue;
      absl::MutexLock lock(&mu);
      auto more = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return notified > seen; };
      mu.AwaitWithTimeout(absl::Condition(&more), absl::Milliseconds(20));
    }
  }

  // Everything available now; true if anything was.
  bool TakeAvailable() {
    bool any = false;
    while (std::optional<Generation::Chunk> chunk = generation->Take()) {
      any = true;
      ++messages;
      text += chunk->message.text();
      if (chunk->last) {
        last = chunk->message;
        status = chunk->status;
        ended = true;
        generation.reset();
        break;
      }
    }
    return any;
  }
};

v1::GenerateRequest Request(const std::string& prompt, int max_tokens) {
  v1::GenerateRequest request;
  request.set_prompt(prompt);
  request.mutable_stop()->set_max_tokens(max_tokens);
  return request;
}

Generation::Call CallOf(const std::string& tenant) {
  Generation::Call call;
  call.caller.tenant = tenant;
  call.api = "test";
  return call;
}

class GenerationServiceTest : public ::testing::Test {
 protected:
  void Start(FakeEngineOptions engine_options, int max_streams_per_tenant = 128) {
    engine_ = std::make_unique<FakeEngine>(engine_options);
    auth_ = std::make_unique<Authenticator>(nullptr);
    metrics_ = std::make_unique<ServiceMetrics>(
        Prices{}, 10, [this] { return engine_->Stats(); }, engine_->Info());
    TenantLimiterOptions limiter_options;
    limiter_options.default_max_streams = max_streams_per_tenant;
    limiter_ = std::make_unique<TenantLimiter>(limiter_options);
    std::remove(db_path_.c_str());
    std::remove(spill_path_.c_str());
    ledger::UsageLedgerOptions ledger_options;
    ledger_options.spill_path = spill_path_;
    ledger_ = std::make_unique<ledger::UsageLedger>(*ledger::SqliteStore::Open(db_path_),
                                                    ledger_options);
    ServiceOptions options;
    options.limits.context_size = engine_->Info().context_size;
    options.limits.vocab_size = engine_->Info().vocab_size;
    options.limiter = limiter_.get();
    options.usage_ledger = ledger_.get();
    service_ = std::make_unique<GenerationService>(engine_.get(), auth_.get(), metrics_.get(),
                                                   options);
  }

  void TearDown() override {
    // The service waits for every Generation, which needs the engine and the
    // ledger to finish with them.
    service_.reset();
    ledger_.reset();
    engine_.reset();
    limiter_.reset();
  }

  // Starts `request` for `tenant` into `stream`; the status of Start.
  absl::Status StartInto(ClientStream& stream, const std::string& tenant,
                         const v1::GenerateRequest& request) {
    absl::StatusOr<std::shared_ptr<Generation>> generation =
        service_->Start(CallOf(tenant), request, stream.Notifier());
    if (!generation.ok()) return generation.status();
    stream.generation = *std::move(generation);
    return absl::OkStatus();
  }

  std::vector<ledger::ReportRow> LedgerByTenant() {
    ledger_->Flush();
    auto rows = ledger::SqliteStore::Open(db_path_).value()->Report({});
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : std::vector<ledger::ReportRow>{};
  }

  double Metric(const std::string& name, const std::map<std::string, std::string>& labels) {
    return testing::MetricValue(metrics_->Collect(), name, labels).value_or(0);
  }

  const std::string db_path_ = ::testing::TempDir() + "/phi3_generation_service_test.db";
  const std::string spill_path_ = ::testing::TempDir() + "/phi3_generation_service_test.spill";
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<ServiceMetrics> metrics_;
  std::unique_ptr<TenantLimiter> limiter_;
  std::unique_ptr<ledger::UsageLedger> ledger_;
  std::unique_ptr<GenerationService> service_;
};

TEST_F(GenerationServiceTest, ConcurrentClientsEachGetTheirOwnOutputAndBill) {
  FakeEngineOptions engine_options;
  engine_options.max_running = 4;
  engine_options.max_waiting = 8;
  Start(engine_options);
  constexpr int kClients = 8, kRequestsEach = 5;
  struct Totals {
    int64_t requests = 0, prompt = 0, completion = 0;
    double cost = 0;
  };
  absl::Mutex mu;
  std::map<std::string, Totals> seen;  // by tenant, what the clients received
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const std::string tenant = "tenant-" + std::to_string(c % 3);
      for (int r = 0; r < kRequestsEach; ++r) {
        const int max_tokens = 3 + (c + r) % 7;
        ClientStream stream;
        absl::Status started =
            StartInto(stream, tenant, Request(std::string(c * kRequestsEach + r + 1, 'x'),
                                              max_tokens));
        if (!started.ok()) {
          ADD_FAILURE() << started;
          ++failures;
          continue;
        }
        stream.ReadToEnd();
        // The fake engine's completion token i is 'a' + (prompt tokens + i) % 26.
        const int prompt_tokens = stream.last.usage().prompt_tokens();
        std::string expected;
        for (int i = 0; i < max_tokens; ++i) {
          expected += static_cast<char>('a' + (prompt_tokens + i) % 26);
        }
        if (!stream.ended || !stream.status.ok() || stream.text != expected ||
            prompt_tokens != c * kRequestsEach + r + 2) {
          ADD_FAILURE() << "client " << c << " request " << r << ": ended " << stream.ended
                        << " status " << stream.status << " text '" << stream.text
                        << "' expected '" << expected << "' prompt tokens " << prompt_tokens;
          ++failures;
          continue;
        }
        absl::MutexLock lock(&mu);
        Totals& t = seen[tenant];
        ++t.requests;
        t.prompt += prompt_tokens;
        t.completion += stream.last.usage().completion_tokens();
        t.cost += stream.last.cost_usd();
      }
    });
  }
  for (std::thread& t : clients) t.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(service_->WaitUntilIdle(absl::Seconds(10)));

  // The ledger, the metrics and the clients agree, tenant by tenant.
  const std::vector<ledger::ReportRow> rows = LedgerByTenant();
  ASSERT_EQ(rows.size(), 3u);
  for (const ledger::ReportRow& row : rows) {
    const Totals& t = seen[row.group];
    EXPECT_EQ(row.requests, t.requests) << row.group;
    EXPECT_EQ(row.prompt_tokens, t.prompt) << row.group;
    EXPECT_EQ(row.completion_tokens, t.completion) << row.group;
    EXPECT_NEAR(row.cost_usd, t.cost, 1e-12) << row.group;
    EXPECT_EQ(Metric("phi3_prompt_tokens_total", {{"tenant", row.group}}), t.prompt);
    EXPECT_EQ(Metric("phi3_completion_tokens_total", {{"tenant", row.group}}), t.completion);
  }
  EXPECT_EQ(Metric("phi3_active_streams", {}), 0);
}

TEST_F(GenerationServiceTest, CancellationsRacingTheEngineEndEveryStreamAndFreeEverySlot) {
  FakeEngineOptions engine_options;
  engine_options.max_running = 8;
  engine_options.max_waiting = 16;  // all of them may be queued at first
  constexpr int kStreams = 12;
  Start(engine_options, /*max_streams_per_tenant=*/kStreams);
  std::vector<std::unique_ptr<ClientStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<ClientStream>());
    const absl::Status started =
        StartInto(*streams.back(), "tenant", Request("go " + std::to_string(i), 400));
    ASSERT_TRUE(started.ok()) << started;
  }
  // Readers that leave, go idle or read on, and once they all have acted a
  // server-side cancel of all that remain, all while the engine produces
  // tokens (400 each: none ends on its own first).
  std::atomic<int> acted{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < kStreams; ++i) {
    readers.emplace_back([&, i] {
      ClientStream& stream = *streams[i];
      absl::SleepFor(absl::Milliseconds(2 * i));
      stream.TakeAvailable();
      switch (i % 3) {
        case 0:
          stream.generation->ClientGone();
          stream.generation.reset();  // a departed transport keeps nothing
          ++acted;
          return;
        case 1:
          stream.generation->CancelIdle(absl::Milliseconds(2 * i));
          break;
        default:
          break;
      }
      ++acted;
      stream.ReadToEnd();
    });
  }
  std::thread canceller([&] {
    while (acted.load() < kStreams) absl::SleepFor(absl::Milliseconds(1));
    service_->CancelAll();
  });
  for (std::thread& t : readers) t.join();
  canceller.join();
  for (int i = 0; i < kStreams; ++i) {
    if (i % 3 == 0) continue;
    const ClientStream& stream = *streams[i];
    ASSERT_TRUE(stream.ended) << i;
    if (i % 3 == 1) {
      EXPECT_EQ(stream.status.code(), absl::StatusCode::kCancelled) << i << " " << stream.status;
    } else {
      EXPECT_TRUE(stream.status.ok() || absl::IsUnavailable(stream.status))
          << i << " " << stream.status;
    }
  }
  ASSERT_TRUE(service_->WaitUntilIdle(absl::Seconds(10)));
  EXPECT_EQ(service_->num_active(), 0);
  EXPECT_EQ(Metric("phi3_active_streams", {}), 0);
  // Every request is billed once, whoever ended it.
  const std::vector<ledger::ReportRow> rows = LedgerByTenant();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].requests, kStreams);
  EXPECT_EQ(Metric("phi3_completion_tokens_total", {{"tenant", "tenant"}}),
            rows[0].completion_tokens);
  // Every stream slot came back: the tenant may open all of them again.
  std::vector<std::unique_ptr<ClientStream>> again;
  for (int i = 0; i < kStreams; ++i) {
    again.push_back(std::make_unique<ClientStream>());
    const absl::Status started = StartInto(*again.back(), "tenant", Request("again", 1));
    ASSERT_TRUE(started.ok()) << i << " " << started;
  }
  for (auto& stream : again) stream->ReadToEnd();
}

TEST_F(GenerationServiceTest, StreamCapHoldsUnderConcurrentAdmission) {
  FakeEngineOptions engine_options;
  engine_options.max_running = 8;
  engine_options.max_waiting = 8;
  constexpr int kCap = 3, kCallers = 8;
  Start(engine_options, kCap);
  engine_->Pause();
  std::vector<ClientStream> streams(kCallers);
  std::vector<absl::Status> started(kCallers);
  absl::Notification go;
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      go.WaitForNotification();
      started[i] = StartInto(streams[i], "capped", Request("hi", 2));
    });
  }
  go.Notify();
  for (std::thread& t : callers) t.join();
  int admitted = 0;
  for (const absl::Status& status : started) {
    if (status.ok()) {
      ++admitted;
    } else {
      EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
    }
  }
  EXPECT_EQ(admitted, kCap);
  engine_->Resume();
  for (int i = 0; i < kCallers; ++i) {
    if (!started[i].ok()) continue;
    streams[i].ReadToEnd();
    EXPECT_TRUE(streams[i].status.ok()) << streams[i].status;
  }
  ASSERT_TRUE(service_->WaitUntilIdle(absl::Seconds(10)));
  std::vector<ClientStream> again(kCap);
  for (ClientStream& stream : again) {
    ASSERT_TRUE(StartInto(stream, "capped", Request("hi", 1)).ok());
  }
  for (ClientStream& stream : again) stream.ReadToEnd();
}

TEST_F(GenerationServiceTest, DrainRefusesNewCallsAndLetsStreamsInFlightFinish) {
  FakeEngineOptions engine_options;
  engine_options.max_running = 8;
  engine_options.max_waiting = 8;
  Start(engine_options);
  constexpr int kStreams = 6;
  std::vector<ClientStream> streams(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(StartInto(streams[i], "tenant", Request("drain " + std::to_string(i), 40)).ok());
  }
  std::vector<std::thread> readers;
  for (ClientStream& stream : streams) readers.emplace_back([&stream] { stream.ReadToEnd(); });
  std::thread drainer([&] { service_->StartDrain(); });
  drainer.join();
  EXPECT_TRUE(absl::IsUnavailable(service_->Admit(std::nullopt).status()));
  EXPECT_TRUE(service_->WaitUntilIdle(absl::Seconds(10)));
  for (std::thread& t : readers) t.join();
  for (const ClientStream& stream : streams) {
    EXPECT_TRUE(stream.status.ok()) << stream.status;
    EXPECT_EQ(stream.text.size(), 40u);
  }
}

}  // namespace
}  // namespace phi3::service
