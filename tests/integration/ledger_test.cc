// The usage ledger under faults, on the real phi3-server: kill -9 under load
// (SQLite and PostgreSQL), a PostgreSQL outage while serving, and a SIGTERM
// drain. Every request whose client saw its end must be in the ledger with
// the usage the client saw, and the ledger's totals must equal the
// Prometheus counters.
#include <signal.h>
#include <sqlite3.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/ledger/testing/test_postgres.h"
#include "tests/integration/test_env.h"

namespace phi3::integration {
namespace {

using ::phi3::ledger::testing::TestPostgres;

struct Row {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double cost_usd = 0;
  std::string finish_reason;
  std::string status_code;
};

// request_id -> row, straight from the database.
std::map<std::string, Row> ReadLedger(const std::string& uri) {
  constexpr char kSelect[] =
      "SELECT request_id, prompt_tokens, completion_tokens, cost_usd, finish_reason, status_code"
      " FROM usage_ledger";
  std::map<std::string, Row> rows;
  if (uri.rfind("sqlite:", 0) == 0) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(uri.substr(7).c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
              SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, kSelect, -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    while (st != nullptr && sqlite3_step(st) == SQLITE_ROW) {
      Row& r = rows[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))];
      r.prompt_tokens = sqlite3_column_int64(st, 1);
      r.completion_tokens = sqlite3_column_int64(st, 2);
      r.cost_usd = sqlite3_column_double(st, 3);
      r.finish_reason = reinterpret_cast<const char*>(sqlite3_column_text(st, 4));
      r.status_code = reinterpret_cast<const char*>(sqlite3_column_text(st, 5));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rows;
  }
  PGconn* conn = PQconnectdb(uri.c_str());
  PGresult* res = PQexec(conn, kSelect);
  EXPECT_EQ(PQresultStatus(res), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); ++i) {
    Row& r = rows[PQgetvalue(res, i, 0)];
    r.prompt_tokens = std::atoll(PQgetvalue(res, i, 1));
    r.completion_tokens = std::atoll(PQgetvalue(res, i, 2));
    r.cost_usd = std::atof(PQgetvalue(res, i, 3));
    r.finish_reason = PQgetvalue(res, i, 4);
    r.status_code = PQgetvalue(res, i, 5);
  }
  PQclear(res);
  PQfinish(conn);
  return rows;
}

// What a client saw of one call whose end reached it.
struct Seen {
  std::string request_id;
  bool got_final_message = false;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double cost_usd = 0;
  grpc::StatusCode code = grpc::StatusCode::OK;
};

// Clients that loop on Generate calls until stopped: a mix of complete
// calls, calls with a deadline that expires, and calls cancelled midway.
class Load {
 public:
  Load(const std::string& address, int num_clients) {
    for (int i = 0; i < num_clients; ++i) {
      threads_.emplace_back([this, address, i] { Client(address, i); });
    }
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  // Calls whose end (final message, or trailers) reached the client.
  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  int num_started() const { return started_.load(); }
  // Lets the load run for at least `at_least`, then on until `ends` calls
  // have reached their clients with a request id (a slow server, e.g. one
  // built with sanitizers, needs longer), `at_most` in all.
  void RunFor(absl::Duration at_least, int ends, absl::Duration at_most) {
    const absl::Time start = absl::Now();
    absl::SleepFor(at_least);
    while (absl::Now() - start < at_most) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        const auto with_id = std::count_if(seen_.begin(), seen_.end(),
                                           [](const Seen& s) { return !s.request_id.empty(); });
        if (with_id >= ends) return;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

 private:
  void Client(const std::string& address, int index) {
    auto stub = NewStub(address);
    std::mt19937 rng(index);
    while (!stop_) {
      const int kind = rng() % 4;  // 0, 1: complete; 2: deadline; 3: cancel
      v1::GenerateRequest req = Greedy(absl::StrCat("client ", index, " call ", rng() % 1000),
                                       kind == 2 ? 2000 : 4 + rng() % 20);
      req.mutable_stop()->set_ignore_eos(true);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::milliseconds(kind == 2 ? 80 + rng() % 100 : 20000));
      ++started_;
      auto reader = stub->Generate(&context, req);
      v1::GenerateResponse m;
      Seen s;
      int received = 0;
      while (reader->Read(&m)) {
        received += m.token_ids_size();
        if (m.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
          s.got_final_message = true;
          s.prompt_tokens = m.usage().prompt_tokens();
          s.completion_tokens = m.usage().completion_tokens();
          s.cost_usd = m.cost_usd();
        }
        if (kind == 3 && received >= 2) context.TryCancel();
      }
      const grpc::Status status = reader->Finish();
      s.code = status.error_code();
      const auto& trailers = context.GetServerTrailingMetadata();
      if (auto it = trailers.find("phi3-request-id"); it != trailers.end()) {
        s.request_id.assign(it->second.data(), it->second.size());
      }
      if (auto it = trailers.find("phi3-usage-bin"); it != trailers.end() && !s.got_final_message) {
        v1::GenerateResponse summary;
        if (summary.ParseFromArray(it->second.data(), static_cast<int>(it->second.size()))) {
          s.prompt_tokens = summary.usage().prompt_tokens();
          s.completion_tokens = summary.usage().completion_tokens();
          s.cost_usd = summary.cost_usd();
        }
      }
      if (s.got_final_message || !s.request_id.empty()) {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.push_back(s);
      }
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
        absl::SleepFor(absl::Milliseconds(20));  // the server is gone
      }
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<int> started_{0};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<Seen> seen_;
};

// Every call whose end reached its client is in the ledger with what the
// client saw; returns how many calls were checked.
int ExpectEveryEndInLedger(const std::vector<Seen>& seen, const std::map<std::string, Row>& rows) {
  int checked = 0;
  for (const Seen& s : seen) {
    // The final message and the trailers are sent together, after the
    // ledger stored the record; a client killed in between saw no id.
    if (s.request_id.empty()) continue;
    ++checked;
    auto it = rows.find(s.request_id);
    if (it == rows.end()) {
      ADD_FAILURE() << "request " << s.request_id << " (code " << s.code
                    << ") reached its client but is not in the ledger";
      continue;
    }
    EXPECT_EQ(it->second.prompt_tokens, s.prompt_tokens) << s.request_id;
    EXPECT_EQ(it->second.completion_tokens, s.completion_tokens) << s.request_id;
    EXPECT_DOUBLE_EQ(it->second.cost_usd, s.cost_usd) << s.request_id;
  }
  return checked;
}

std::vector<std::string> LedgerServerArgs(const std::string& uri, const std::string& spill) {
  std::vector<std::string> args = BasicServerArgs();
  args.push_back("--usage-ledger=" + uri);
  args.push_back("--usage-ledger-spill=" + spill);
  return args;
}

void KillNineUnderLoad(const std::string& uri, const std::string& spill) {
  auto server = ServerProcess::Start(GetTools().server, LedgerServerArgs(uri, spill));
  ASSERT_TRUE(server.ok()) << server.status();
  Load load((*server)->address(), 6);
  load.RunFor(absl::Milliseconds(1500), 15, absl::Seconds(60));
  (*server)->Signal(SIGKILL);
  EXPECT_EQ((*server)->WaitForExit(absl::Seconds(10)), -1);  // killed
  load.Stop();
  const std::vector<Seen> seen = load.seen();
  // A restart takes over a spill file (none with a healthy database).
  auto restarted = ServerProcess::Start(GetTools().server, LedgerServerArgs(uri, spill));
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  const int checked = ExpectEveryEndInLedger(seen, ReadLedger(uri));
  EXPECT_GT(checked, 10) << "too little load to mean anything";
  std::printf("kill -9 on %s: %d calls started, %d ends seen by clients, all in the ledger\n",
              uri.substr(0, uri.find(':')).c_str(), load.num_started(), checked);
}

TEST(LedgerFaults, KillNineUnderLoadSqlite) {
  KillNineUnderLoad("sqlite:" + ScratchDir() + "/kill9.db", ScratchDir() + "/kill9.spill");
}

TEST(LedgerFaults, PostgresOutageThenKillNine) {
  absl::StatusOr<std::unique_ptr<TestPostgres>> pg = TestPostgres::Create();
  ASSERT_TRUE(pg.ok()) << pg.status();
  KillNineUnderLoad((*pg)->uri(), ScratchDir() + "/pg-kill9.spill");

  // The database goes away while the server serves: calls go on, records
  // spill (fdatasync'd), metrics show the backlog; a kill -9 then loses
  // nothing: the next start writes the spill file back.
  const std::string spill = ScratchDir() + "/pg-outage.spill";
  auto server = ServerProcess::Start(GetTools().server, LedgerServerArgs((*pg)->uri(), spill));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*pg)->Stop().ok());
  std::vector<Seen> seen;
  {
    Load load((*server)->address(), 4);
    load.RunFor(absl::Milliseconds(1000), 10, absl::Seconds(60));
    load.Stop();
    seen = load.seen();
  }
  for (const Seen& s : seen) EXPECT_NE(s.code, grpc::StatusCode::INTERNAL);
  auto metrics = ParseMetrics(*HttpGet((*server)->metrics_address(), "/metrics"));
  EXPECT_EQ(SumMetric(metrics, "phi3_ledger_database_up"), 0);
  EXPECT_GE(SumMetric(metrics, "phi3_ledger_spilled_records"), static_cast<double>(seen.size()));
  EXPECT_GT(SumMetric(metrics, "phi3_ledger_write_errors_total"), 0);
  EXPECT_EQ(SumMetric(metrics, "phi3_ledger_records_dropped_total"), 0);
  (*server)->Signal(SIGKILL);
  (*server)->WaitForExit(absl::Seconds(10));

  ASSERT_TRUE((*pg)->Start().ok());
  auto restarted = ServerProcess::Start(GetTools().server, LedgerServerArgs((*pg)->uri(), spill));
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  double pending = -1;
  for (int i = 0; i < 200 && pending != 0; ++i) {
    pending = SumMetric(ParseMetrics(*HttpGet((*restarted)->metrics_address(), "/metrics")),
                        "phi3_ledger_spilled_records");
    if (pending != 0) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(pending, 0);
  EXPECT_THAT((*restarted)->log(), ::testing::HasSubstr("from an earlier run"));
  EXPECT_GT(ExpectEveryEndInLedger(seen, ReadLedger((*pg)->uri())), 5);
}

TEST(LedgerFaults, SigtermDrainAndTotalsEqualMetricsAndClients) {
  const std::string uri = "sqlite:" + ScratchDir() + "/drain.db";
  auto server = ServerProcess::Start(GetTools().server,
                                     LedgerServerArgs(uri, ScratchDir() + "/drain.spill"));
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<Seen> seen;
  {
    Load load((*server)->address(), 4);
    load.RunFor(absl::Milliseconds(1200), 15, absl::Seconds(60));
    load.Stop();
    seen = load.seen();
  }
  // Calls cancelled by their client end server-side a moment later.
  std::map<std::string, double> metrics;
  for (int i = 0; i < 100; ++i) {
    metrics = ParseMetrics(*HttpGet((*server)->metrics_address(), "/metrics"));
    if (SumMetric(metrics, "phi3_active_streams") == 0 &&
        SumMetric(metrics, "phi3_ledger_queue_depth") == 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  const std::map<std::string, Row> rows = ReadLedger(uri);
  EXPECT_GT(ExpectEveryEndInLedger(seen, rows), 10);
  int64_t prompt = 0, completion = 0;
  double cost = 0;
  int deadlines = 0;
  for (const auto& [id, r] : rows) {
    prompt += r.prompt_tokens;
    completion += r.completion_tokens;
    cost += r.cost_usd;
    deadlines += r.status_code == "DEADLINE_EXCEEDED" && r.finish_reason == "deadline";
  }
  EXPECT_EQ(static_cast<double>(rows.size()),
            SumMetric(metrics, "phi3_requests_total") -
                SumMetric(metrics, "phi3_requests_total", {"finish_reason=\"rejected\""}));
  EXPECT_EQ(static_cast<double>(prompt), SumMetric(metrics, "phi3_prompt_tokens_total"));
  EXPECT_EQ(static_cast<double>(completion), SumMetric(metrics, "phi3_completion_tokens_total"));
  EXPECT_NEAR(cost, SumMetric(metrics, "phi3_spend_usd_total"), 1e-9);
  EXPECT_GT(deadlines, 0);
  EXPECT_EQ(static_cast<double>(deadlines),
            SumMetric(metrics, "phi3_requests_total", {"code=\"DEADLINE_EXCEEDED\""}));

  // phi3-usage reports the same totals.
  CommandResult report = RunCommand(
      {PHI3_USAGE_PATH, "--ledger", uri, "report", "--json"},
      absl::Seconds(30));
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_EQ(*JsonNumberField(report.out.substr(report.out.find("\"total\"")), "requests"),
            static_cast<double>(rows.size()));
  EXPECT_EQ(*JsonNumberField(report.out.substr(report.out.find("\"total\"")), "prompt_tokens"),
            static_cast<double>(prompt));

  // SIGTERM with streams in flight: they finish, and are in the ledger.
  Load load((*server)->address(), 4);
  absl::SleepFor(absl::Milliseconds(400));
  (*server)->Signal(SIGTERM);
  EXPECT_EQ((*server)->WaitForExit(absl::Seconds(60)), 0) << (*server)->log();
  load.Stop();
  const std::vector<Seen> drained = load.seen();
  int ok_calls = 0;
  for (const Seen& s : drained) ok_calls += s.code == grpc::StatusCode::OK;
  EXPECT_GT(ok_calls, 0);
  EXPECT_GT(ExpectEveryEndInLedger(drained, ReadLedger(uri)), 0);
}

}  // namespace
}  // namespace phi3::integration
