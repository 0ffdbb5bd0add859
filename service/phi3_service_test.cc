// The service end to end over loopback gRPC, against the fake engine.
#include "service/phi3_service.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "service/ledger/sqlite_store.h"
#include "service/testing/fake_engine.h"
#include "service/testing/metric_value.h"

namespace phi3::service {
namespace {

using ::testing::HasSubstr;
using testing::FakeEngine;
using testing::FakeEngineOptions;

struct StreamResult {
  std::string text;
  std::vector<int32_t> tokens;
  int num_messages = 0;
  v1::GenerateResponse last;
  grpc::Status status;
};

class ServiceTest : public ::testing::Test {
 protected:
  void Start(FakeEngineOptions engine_options = {}, bool auth = false,
             int max_buffered_tokens = 1024) {
    engine_ = std::make_unique<FakeEngine>(engine_options);
    if (auth) {
      std::ofstream(keys_path_) << keys_text_;
      keys_ = *ApiKeyStore::Load(keys_path_);
    }
    auth_ = std::make_unique<Authenticator>(keys_.get());
    metrics_ = std::make_shared<ServiceMetrics>(
        Prices{}, 10, [this] { return engine_->Stats(); }, engine_->Info());
    ServiceOptions options;
    options.limits.context_size = engine_->Info().context_size;
    options.limits.vocab_size = engine_->Info().vocab_size;
    options.max_buffered_tokens = max_buffered_tokens;
    options.stream_idle_timeout = idle_timeout_;
    options.isolate_tenants = isolate_tenants_;
    TenantLimiterOptions limiter_options;
    limiter_options.default_max_streams = default_max_streams_;
    limiter_ = std::make_unique<TenantLimiter>(limiter_options);
    options.limiter = limiter_.get();
    options.usage_ledger = ledger_.get();
    core_ = std::make_unique<GenerationService>(engine_.get(), auth_.get(), metrics_.get(),
                                                options);
    service_ = std::make_unique<Phi3Service>(core_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    stub_ = v1::Phi3::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      server_->Wait();
    }
    service_.reset();
    core_.reset();
    engine_.reset();
    limiter_.reset();
    ledger_.reset();
    std::remove(keys_path_.c_str());
  }

  static void SetDeadline(grpc::ClientContext* context, int ms = 10000) {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(ms));
  }

  StreamResult Drain(grpc::ClientReader<v1::GenerateResponse>* reader) {
    StreamResult result;
    v1::GenerateResponse message;
    while (reader->Read(&message)) {
      ++result.num_messages;
      result.text += message.text();
      result.tokens.insert(result.tokens.end(), message.token_ids().begin(),
                           message.token_ids().end());
      result.last = message;
    }
    result.status = reader->Finish();
    return result;
  }

  StreamResult Generate(const v1::GenerateRequest& request, const std::string& key = "") {
    grpc::ClientContext context;
    SetDeadline(&context);
    if (!key.empty()) context.AddMetadata("authorization", "Bearer " + key);
    auto reader = stub_->Generate(&context, request);
    return Drain(reader.get());
  }

  double Metric(const std::string& name, const std::map<std::string, std::string>& labels) {
    return testing::MetricValue(metrics_->Collect(), name, labels).value_or(0);
  }

  // Polls `done` for up to 5 s.
  template <typename F>
  bool Eventually(F done) {
    for (int i = 0; i < 500; ++i) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return done();
  }

  static v1::GenerateRequest Request(const std::string& prompt, int max_tokens) {
    v1::GenerateRequest r;
    r.set_prompt(prompt);
    r.mutable_stop()->set_max_tokens(max_tokens);
    return r;
  }

  // Settings read by Start().
  std::string keys_text_ = "# test keys\nsecret-a tenant-a\nsecret-b tenant-b\n";
  absl::Duration idle_timeout_ = absl::Seconds(30);
  bool isolate_tenants_ = true;
  int default_max_streams_ = 128;

  std::string keys_path_ = ::testing::TempDir() + "/phi3_service_test_keys.txt";
  std::unique_ptr<TenantLimiter> limiter_;
  // Set before Start() to record usage.
  std::unique_ptr<ledger::UsageLedger> ledger_;
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<ApiKeyStore> keys_;
  std::unique_ptr<Authenticator> auth_;
  std::shared_ptr<ServiceMetrics> metrics_;
  std::unique_ptr<GenerationService> core_;
  std::unique_ptr<Phi3Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Phi3::Stub> stub_;
};

TEST_F(ServiceTest, StreamsTokensThenFinalMessage) {
  Start();
  // "hi" + BOS = 3 prompt tokens, so the fake engine writes d, e, f, g, h.
  StreamResult r = Generate(Request("hi", 5));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.text, "defgh");
  EXPECT_THAT(r.tokens, ::testing::ElementsAre(3 + 'd', 3 + 'e', 3 + 'f', 3 + 'g', 3 + 'h'));
  EXPECT_EQ(r.last.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(r.last.usage().prompt_tokens(), 3);
  EXPECT_EQ(r.last.usage().completion_tokens(), 5);
  EXPECT_DOUBLE_EQ(r.last.cost_usd(), (3 * 1.0 + 5 * 4.0) / 1e6);
  EXPECT_GT(r.last.timings().total_ms(), 0);
  EXPECT_GE(r.last.timings().total_ms(), r.last.timings().ttft_ms());
  for (int i = 0; i + 1 < r.num_messages; ++i) SUCCEED();
  EXPECT_GE(r.num_messages, 2);  // streamed, not one message at the end
}

TEST_F(ServiceTest, StopStringIsNeverStreamed) {
  Start();
  v1::GenerateRequest req = Request("hi", 20);
  req.mutable_stop()->add_stop("fg");
  StreamResult r = Generate(req);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.text, "de");
  EXPECT_EQ(r.last.finish_reason(), v1::FINISH_REASON_STOP_SEQUENCE);
}

TEST_F(ServiceTest, LogprobsWhenAsked) {
  Start();
  v1::GenerateRequest req = Request("hi", 3);
  req.mutable_sampling()->set_top_logprobs(2);
  grpc::ClientContext context;
  SetDeadline(&context);
  auto reader = stub_->Generate(&context, req);
  int entries = 0;
  v1::GenerateResponse m;
  while (reader->Read(&m)) {
    ASSERT_EQ(m.logprobs_size(), m.token_ids_size());
    for (const auto& lp : m.logprobs()) EXPECT_EQ(lp.top_size(), 2);
    entries += m.logprobs_size();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(entries, 3);
}

TEST_F(ServiceTest, ChatRendersTheTemplate) {
  Start();
  v1::ChatRequest req;
  auto* m = req.add_messages();
  m->set_role(v1::ChatMessage::ROLE_USER);
  m->set_content("yo");
  req.mutable_stop()->set_max_tokens(2);
  grpc::ClientContext context;
  SetDeadline(&context);
  StreamResult r = Drain(stub_->Chat(&context, req).get());
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(engine_->Detokenize(engine_->last_request().prompt_tokens), "U:yo\nA:");
  EXPECT_EQ(r.last.usage().completion_tokens(), 2);
}

TEST_F(ServiceTest, ValidationErrorsAreInvalidArgument) {
  Start();
  v1::GenerateRequest req = Request("hi", 600);  // context is 512
  StreamResult r = Generate(req);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(r.status.error_message(), HasSubstr("exceeds the context size of 512"));
  EXPECT_EQ(r.num_messages, 0);
  EXPECT_EQ(Metric("phi3_requests_total", {{"tenant", "local"}, {"finish_reason", "rejected"},
                                           {"code", "INVALID_ARGUMENT"}}),
            1);
}

TEST_F(ServiceTest, AuthRequiresAKnownBearerKey) {
  Start({}, /*auth=*/true);
  StreamResult none = Generate(Request("hi", 2));
  EXPECT_EQ(none.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Generate(Request("hi", 2), "wrong").status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  {
    grpc::ClientContext context;
    v1::TokenizeRequest req;
    v1::TokenizeResponse resp;
    EXPECT_EQ(stub_->Tokenize(&context, req, &resp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext context;
    v1::GetModelInfoResponse resp;
    EXPECT_EQ(stub_->GetModelInfo(&context, {}, &resp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  StreamResult ok = Generate(Request("hi", 2), "secret-b");
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(engine_->last_request().tenant, "tenant-b");
  EXPECT_EQ(Metric("phi3_completion_tokens_total", {{"tenant", "tenant-b"}}), 2);
  // SIGHUP path: a reloaded file takes effect for the next call.
  std::ofstream(keys_path_) << "secret-c tenant-c\n";
  ASSERT_TRUE(keys_->Reload().ok());
  EXPECT_EQ(Generate(Request("hi", 2), "secret-b").status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Generate(Request("hi", 2), "secret-c").status.ok());
}

TEST_F(ServiceTest, QueueFullIsResourceExhausted) {
  FakeEngineOptions options;
  options.max_waiting = 2;
  Start(options);
  engine_->Pause();
  grpc::ClientContext c1, c2, c3;
  auto r1 = stub_->Generate(&c1, Request("hi", 2));
  auto r2 = stub_->Generate(&c2, Request("hi", 2));
  ASSERT_TRUE(Eventually([&] { return engine_->Stats().waiting_requests == 2; }));
  StreamResult full = Drain(stub_->Generate(&c3, Request("hi", 2)).get());
  EXPECT_EQ(full.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(full.status.error_message(), HasSubstr("limit 2"));
  engine_->Resume();
  EXPECT_TRUE(Drain(r1.get()).status.ok());
  EXPECT_TRUE(Drain(r2.get()).status.ok());
}

TEST_F(ServiceTest, ClientCancelStopsTheEngineAndIsBilled) {
  FakeEngineOptions options;
  options.step = absl::Milliseconds(5);
  Start(options);
  grpc::ClientContext context;
  auto reader = stub_->Generate(&context, Request("hi", 400));
  v1::GenerateResponse m;
  int received = 0;
  while (received < 3 && reader->Read(&m)) received += m.token_ids_size();
  context.TryCancel();
  while (reader->Read(&m)) received += m.token_ids_size();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(Eventually([&] { return engine_->num_cancelled() == 1; }));
  ASSERT_TRUE(Eventually([&] { return core_->num_active() == 0; }));
  const double billed = Metric("phi3_completion_tokens_total", {{"tenant", "local"}});
  EXPECT_GE(billed, received);
  EXPECT_LT(billed, 400);
  EXPECT_EQ(Metric("phi3_requests_total",
                   {{"tenant", "local"}, {"finish_reason", "cancelled"}, {"code", "CANCELLED"}}),
            1);
  EXPECT_TRUE(Generate(Request("hi", 2)).status.ok());  // still serving
}

// The usage a call's trailers carry (phi3-usage-bin), if any.
std::optional<v1::GenerateResponse> TrailerUsage(const grpc::ClientContext& context) {
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find("phi3-usage-bin");
  if (it == trailers.end()) return std::nullopt;
  v1::GenerateResponse summary;
  if (!summary.ParseFromArray(it->second.data(), static_cast<int>(it->second.size()))) {
    return std::nullopt;
  }
  return summary;
}

TEST_F(ServiceTest, DeadlineStopsGenerationAndIsLabelledAndBilledAsSuch) {
  FakeEngineOptions options;
  options.step = absl::Milliseconds(5);
  Start(options);
  grpc::ClientContext context;
  SetDeadline(&context, 300);
  StreamResult r = Drain(stub_->Generate(&context, Request("hi", 400)).get());
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ASSERT_TRUE(Eventually([&] { return core_->num_active() == 0; }));
  const double billed = Metric("phi3_completion_tokens_total", {{"tenant", "local"}});
  EXPECT_LT(billed, 400);
  EXPECT_EQ(Metric("phi3_requests_total", {{"tenant", "local"}, {"finish_reason", "deadline"},
                                           {"code", "DEADLINE_EXCEEDED"}}),
            1);
  // The engine stops just before the call's deadline, so the status and the
  // usage reach the client: it can reconcile what it received with the bill.
  std::optional<v1::GenerateResponse> usage = TrailerUsage(context);
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->finish_reason(), v1::FINISH_REASON_DEADLINE);
  EXPECT_EQ(usage->usage().completion_tokens(), static_cast<int>(r.tokens.size()));
  EXPECT_EQ(usage->usage().completion_tokens(), billed);
  EXPECT_EQ(usage->usage().prompt_tokens(), 3);
  EXPECT_DOUBLE_EQ(usage->cost_usd(), (3 * 1.0 + billed * 4.0) / 1e6);
  EXPECT_EQ(context.GetServerTrailingMetadata().count("phi3-request-id"), 1u);
  EXPECT_TRUE(Generate(Request("hi", 2)).status.ok());
}

TEST_F(ServiceTest, DeadlineExpiredInTheQueueCostsNothing) {
  FakeEngineOptions options;
  options.step = absl::Milliseconds(5);
  options.max_running = 1;
  Start(options);
  grpc::ClientContext busy_context;
  auto busy = stub_->Generate(&busy_context, Request("hi", 200));
  v1::GenerateResponse first;
  ASSERT_TRUE(busy->Read(&first));  // running: the next call waits
  grpc::ClientContext context;
  SetDeadline(&context, 200);
  StreamResult r = Drain(stub_->Generate(&context, Request("a longer prompt", 5)).get());
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(r.tokens.empty());
  std::optional<v1::GenerateResponse> usage = TrailerUsage(context);
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ(usage->usage().prompt_tokens(), 0);
  EXPECT_EQ(usage->usage().completion_tokens(), 0);
  EXPECT_EQ(usage->cost_usd(), 0);
  busy_context.TryCancel();
  Drain(busy.get());
}

TEST_F(ServiceTest, CancelAtTheDeadlineIsADeadlineExpiry) {
  // The engine is stalled, so gRPC's own deadline ends the call first and the
  // engine later reports the request cancelled.
  Start();
  engine_->Pause();
  grpc::ClientContext context;
  SetDeadline(&context, 100);
  StreamResult r = Drain(stub_->Generate(&context, Request("hi", 5)).get());
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  engine_->Resume();
  ASSERT_TRUE(Eventually([&] { return core_->num_active() == 0; }));
  EXPECT_EQ(Metric("phi3_requests_total", {{"tenant", "local"}, {"finish_reason", "deadline"},
                                           {"code", "DEADLINE_EXCEEDED"}}),
            1);
  EXPECT_EQ(Metric("phi3_requests_total", {{"tenant", "local"}, {"finish_reason", "cancelled"},
                                           {"code", "CANCELLED"}}),
            0);
}

TEST_F(ServiceTest, SlowClientIsCancelled) {
  FakeEngineOptions options;
  options.step = absl::ZeroDuration();
  options.text_bytes_per_token = 64 << 10;
  options.context_size = 100000;
  Start(options, false, /*max_buffered_tokens=*/8);
  grpc::ClientContext context;
  SetDeadline(&context, 20000);
  auto reader = stub_->Generate(&context, Request("hi", 50000));
  // Never read: flow control stops the writes, tokens pile up, the server gives up.
  ASSERT_TRUE(Eventually([&] {
    return Metric("phi3_requests_total", {{"tenant", "local"}, {"finish_reason", "cancelled"},
                                          {"code", "RESOURCE_EXHAUSTED"}}) == 1;
  }));
  context.TryCancel();
  reader->Finish();
}

TEST_F(ServiceTest, DrainRefusesNewCallsAndFinishesOldOnes) {
  FakeEngineOptions options;
  options.step = absl::Milliseconds(2);
  Start(options);
  grpc::ClientContext context;
  auto reader = stub_->Generate(&context, Request("hi", 50));
  v1::GenerateResponse first;
  ASSERT_TRUE(reader->Read(&first));
  core_->StartDrain();
  StreamResult refused = Generate(Request("hi", 2));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  StreamResult rest = Drain(reader.get());
  EXPECT_TRUE(rest.status.ok());
  EXPECT_EQ(rest.last.usage().completion_tokens(), 50);
  EXPECT_TRUE(core_->WaitUntilIdle(absl::Seconds(5)));
}

TEST_F(ServiceTest, CancelAllEndsStreamsUnavailable) {
  FakeEngineOptions options;
  options.step = absl::Milliseconds(5);
  Start(options);
  grpc::ClientContext context;
  auto reader = stub_->Generate(&context, Request("hi", 400));
  v1::GenerateResponse first;
  ASSERT_TRUE(reader->Read(&first));
  core_->StartDrain();
  EXPECT_FALSE(core_->WaitUntilIdle(absl::Milliseconds(20)));
  core_->CancelAll();
  StreamResult rest = Drain(reader.get());
  EXPECT_EQ(rest.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(core_->WaitUntilIdle(absl::Seconds(5)));
}

TEST_F(ServiceTest, TokenizeAndModelInfo) {
  Start();
  grpc::ClientContext c1;
  v1::TokenizeRequest req;
  req.set_text("ab");
  req.set_add_special(false);
  v1::TokenizeResponse resp;
  ASSERT_TRUE(stub_->Tokenize(&c1, req, &resp).ok());
  EXPECT_THAT(resp.token_ids(), ::testing::ElementsAre(3 + 'a', 3 + 'b'));
  EXPECT_EQ(resp.num_tokens(), 2);
  grpc::ClientContext c2;
  v1::GetModelInfoResponse info;
  ASSERT_TRUE(stub_->GetModelInfo(&c2, {}, &info).ok());
  EXPECT_EQ(info.architecture(), "phi3");
  EXPECT_EQ(info.limits().context_size(), 512);
  EXPECT_EQ(info.vocab_size(), 300);
  EXPECT_DOUBLE_EQ(info.prices().output_usd_per_million(), 4.0);
}

TEST_F(ServiceTest, PrefillOnlyStreamsUsageAndIsCounted) {
  FakeEngineOptions options;
  options.cached_prompt_tokens = 2;
  Start(options);
  v1::GenerateRequest request = Request("warm me up", 0);
  request.set_prefill_only(true);
  StreamResult r = Generate(request);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.num_messages, 1);
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.last.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(r.last.usage().prompt_tokens(), 11);  // BOS + 10 bytes
  EXPECT_EQ(r.last.usage().cached_prompt_tokens(), 2);
  EXPECT_EQ(r.last.usage().completion_tokens(), 0);
  // Billed as prompt tokens: 9 at the input price, 2 at the cached price.
  EXPECT_NEAR(r.last.cost_usd(), (9 * 1.0 + 2 * 0.5) / 1e6, 1e-15);
  EXPECT_TRUE(engine_->last_request().prefill_only);
  EXPECT_EQ(Metric("phi3_prefill_requests_total", {{"tenant", "local"}}), 1);
  EXPECT_EQ(Metric("phi3_prompt_tokens_total", {{"tenant", "local"}}), 11);

  // Only the prompt has to fit: max_tokens is ignored, the prompt is not.
  request.set_prompt(std::string(511, 'x'));  // + BOS = the whole context
  request.mutable_stop()->set_max_tokens(100);
  EXPECT_TRUE(Generate(request).status.ok());
  request.set_prompt(std::string(512, 'x'));
  EXPECT_EQ(Generate(request).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, MetricTotalsEqualReturnedUsage) {
  FakeEngineOptions options;
  options.cached_prompt_tokens = 2;
  Start(options);
  int prompt = 0, cached = 0, completion = 0;
  double cost = 0;
  std::vector<std::thread> threads;
  std::mutex mu;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      StreamResult r = Generate(Request(std::string(i + 1, 'x'), 3 + i));
      ASSERT_TRUE(r.status.ok());
      std::lock_guard<std::mutex> lock(mu);
      prompt += r.last.usage().prompt_tokens();
      cached += r.last.usage().cached_prompt_tokens();
      completion += r.last.usage().completion_tokens();
      cost += r.last.cost_usd();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Metric("phi3_prompt_tokens_total", {{"tenant", "local"}}), prompt);
  EXPECT_EQ(Metric("phi3_cached_prompt_tokens_total", {{"tenant", "local"}}), cached);
  EXPECT_EQ(Metric("phi3_completion_tokens_total", {{"tenant", "local"}}), completion);
  EXPECT_NEAR(Metric("phi3_spend_usd_total", {{"tenant", "local"}, {"type", "input"}}) +
                  Metric("phi3_spend_usd_total", {{"tenant", "local"}, {"type", "output"}}),
              cost, 1e-12);
  EXPECT_EQ(Metric("phi3_requests_total",
                   {{"tenant", "local"}, {"finish_reason", "length"}, {"code", "OK"}}),
            6);
}

// Holds Append until released; counts what it stored.
class GatedStore : public ledger::LedgerStore {
 public:
  absl::Status Append(absl::Span<const ledger::UsageRecord> records) override {
    gate_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    stored_.insert(stored_.end(), records.begin(), records.end());
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<ledger::ReportRow>> Report(const ledger::ReportQuery&) override {
    return absl::UnimplementedError("not needed");
  }
  std::string Describe() const override { return "gated"; }
  void Open() { gate_.Notify(); }
  std::vector<ledger::UsageRecord> stored() const {
    absl::MutexLock lock(&mu_);
    return stored_;
  }

 private:
  absl::Notification gate_;
  mutable absl::Mutex mu_;
  std::vector<ledger::UsageRecord> stored_;
};

ledger::UsageLedgerOptions LedgerOptions(const std::string& name) {
  ledger::UsageLedgerOptions options;
  options.spill_path = ::testing::TempDir() + "/phi3_service_test_" + name + ".spill";
  std::remove(options.spill_path.c_str());
  return options;
}

TEST_F(ServiceTest, FinalMessageWaitsUntilTheLedgerStoredTheRecord) {
  auto store = std::make_unique<GatedStore>();
  GatedStore* gated = store.get();
  ledger_ = std::make_unique<ledger::UsageLedger>(std::move(store), LedgerOptions("gated"));
  Start();
  grpc::ClientContext context;
  SetDeadline(&context);
  auto reader = stub_->Generate(&context, Request("hi", 3));
  absl::Notification done;
  StreamResult r;
  std::thread drain([&] {
    r = Drain(reader.get());
    done.Notify();
  });
  // The engine finished long ago; the call has not.
  EXPECT_FALSE(done.WaitForNotificationWithTimeout(absl::Milliseconds(300)));
  gated->Open();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  drain.join();
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(gated->stored().size(), 1u);
  const ledger::UsageRecord record = gated->stored()[0];
  EXPECT_EQ(record.tenant, "local");
  EXPECT_EQ(record.api, "grpc");
  EXPECT_EQ(record.finish_reason, "length");
  EXPECT_EQ(record.status_code, "OK");
  EXPECT_EQ(record.prompt_tokens, r.last.usage().prompt_tokens());
  EXPECT_EQ(record.completion_tokens, 3);
  EXPECT_DOUBLE_EQ(record.cost_usd, r.last.cost_usd());
  EXPECT_EQ(record.model_sha256, engine_->Info().file_sha256);
  EXPECT_EQ(record.request_id.size(), 32u);
  EXPECT_EQ(context.GetServerTrailingMetadata().find("phi3-request-id")->second,
            record.request_id);
}

TEST_F(ServiceTest, LedgerRecordsTheKeyIdNeverTheKey) {
  auto store = std::make_unique<GatedStore>();
  GatedStore* gated = store.get();
  gated->Open();
  ledger_ = std::make_unique<ledger::UsageLedger>(std::move(store), LedgerOptions("key_id"));
  Start({}, /*auth=*/true);
  ASSERT_TRUE(Generate(Request("hi", 2), "secret-b").status.ok());
  ASSERT_TRUE(Generate(Request("hi", 2), "secret-a").status.ok());
  ASSERT_EQ(gated->stored().size(), 2u);
  const std::string b = gated->stored()[0].key_id, a = gated->stored()[1].key_id;
  EXPECT_EQ(gated->stored()[0].tenant, "tenant-b");
  EXPECT_EQ(b.size(), 12u);
  EXPECT_NE(a, b);
  EXPECT_EQ(b.find("secret"), std::string::npos);
  EXPECT_EQ(b, absl::BytesToHexString(KeyDigest("secret-b")).substr(0, 12));
}

TEST_F(ServiceTest, LedgerTotalsEqualMetricsAndWhatClientsReceived) {
  const std::string db = ::testing::TempDir() + "/phi3_service_test_ledger.db";
  std::remove(db.c_str());
  ledger_ = std::make_unique<ledger::UsageLedger>(*ledger::SqliteStore::Open(db),
                                                  LedgerOptions("totals"));
  FakeEngineOptions options;
  options.cached_prompt_tokens = 1;
  options.step = absl::Milliseconds(2);
  Start(options);
  int64_t prompt = 0, completion = 0;
  double cost = 0;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext context;
      SetDeadline(&context, i % 2 == 0 ? 10000 : 120);  // half of them expire
      StreamResult r = Drain(stub_->Generate(&context, Request(std::string(i + 1, 'x'),
                                                               i % 2 == 0 ? 4 : 400)).get());
      v1::GenerateResponse usage = r.status.ok() ? r.last : *TrailerUsage(context);
      std::lock_guard<std::mutex> lock(mu);
      prompt += usage.usage().prompt_tokens();
      completion += usage.usage().completion_tokens();
      cost += usage.cost_usd();
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(Eventually([&] { return core_->num_active() == 0; }));
  ledger_->Flush();
  auto rows = ledger::SqliteStore::Open(db).value()->Report({});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  const ledger::ReportRow& row = (*rows)[0];
  EXPECT_EQ(row.requests, 8);
  EXPECT_EQ(row.prompt_tokens, prompt);
  EXPECT_EQ(row.completion_tokens, completion);
  EXPECT_NEAR(row.cost_usd, cost, 1e-12);
  EXPECT_EQ(Metric("phi3_prompt_tokens_total", {{"tenant", "local"}}), prompt);
  EXPECT_EQ(Metric("phi3_completion_tokens_total", {{"tenant", "local"}}), completion);
  EXPECT_EQ(Metric("phi3_requests_total", {{"tenant", "local"}, {"finish_reason", "deadline"},
                                           {"code", "DEADLINE_EXCEEDED"}}),
            4);
  std::remove(db.c_str());
}

TEST_F(ServiceTest, PrefixCacheScopeIsTheTenantOrItsShareGroup) {
  keys_text_ = "a-key tenant-a\nb-key tenant-b\nc-key tenant-c group=g\nd-key tenant-d group=g\n"
               "e-key g\n";  // a tenant named like the group stays apart from it
  Start({}, /*auth=*/true);
  std::map<std::string, std::string> scope;
  for (const char* t : {"a", "b", "c", "d", "e"}) {
    ASSERT_TRUE(Generate(Request("same prompt", 2), std::string(t) + "-key").status.ok()) << t;
    scope[t] = engine_->last_request().cache_scope;
  }
  EXPECT_NE(scope["a"], scope["b"]);
  EXPECT_EQ(scope["c"], scope["d"]);
  EXPECT_NE(scope["a"], scope["c"]);
  EXPECT_NE(scope["e"], scope["c"]);
  EXPECT_NE(scope["e"], scope["a"]);
}

TEST_F(ServiceTest, IsolateTenantsFalseSharesOneCache) {
  isolate_tenants_ = false;
  Start({}, /*auth=*/true);
  ASSERT_TRUE(Generate(Request("p", 2), "secret-a").status.ok());
  EXPECT_EQ(engine_->last_request().cache_scope, "");
  ASSERT_TRUE(Generate(Request("p", 2), "secret-b").status.ok());
  EXPECT_EQ(engine_->last_request().cache_scope, "");
}

TEST_F(ServiceTest, MalformedOrRepeatedAuthorizationIsRefused) {
  Start({}, /*auth=*/true);
  grpc::ClientContext context;
  SetDeadline(&context);
  context.AddMetadata("authorization", "Bearer secret-a");
  context.AddMetadata("authorization", "Bearer secret-b");
  StreamResult twice = Drain(stub_->Generate(&context, Request("hi", 2)).get());
  EXPECT_EQ(twice.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext context2;
  SetDeadline(&context2);
  context2.AddMetadata("authorization", "Bearer  secret-a");
  EXPECT_EQ(Drain(stub_->Generate(&context2, Request("hi", 2)).get()).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ServiceTest, TenantStreamCapIsResourceExhaustedWithRetryInfo) {
  keys_text_ = "secret-a tenant-a streams=1\nsecret-b tenant-b\n";
  Start({}, /*auth=*/true);
  engine_->Pause();
  grpc::ClientContext c1, c2;
  c1.AddMetadata("authorization", "Bearer secret-a");
  c2.AddMetadata("authorization", "Bearer secret-a");
  auto first = stub_->Generate(&c1, Request("hi", 2));
  ASSERT_TRUE(Eventually([&] { return limiter_->open_streams("tenant-a") == 1; }));
  StreamResult second = Drain(stub_->Generate(&c2, Request("hi", 2)).get());
  EXPECT_EQ(second.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(second.status.error_message(),
              HasSubstr("tenant tenant-a has 1 open streams, at most 1; retry in 1s"));
  EXPECT_THAT(second.status.error_details(), HasSubstr("type.googleapis.com/google.rpc.RetryInfo"));
  EXPECT_EQ(Metric("phi3_requests_total", {{"tenant", "tenant-a"}, {"finish_reason", "rejected"},
                                           {"code", "RESOURCE_EXHAUSTED"}}),
            1);
  engine_->Resume();
  EXPECT_TRUE(Drain(first.get()).status.ok());
  // The slot is given back when the call is done.
  ASSERT_TRUE(Eventually([&] { return limiter_->open_streams("tenant-a") == 0; }));
  EXPECT_TRUE(Generate(Request("hi", 2), "secret-a").status.ok());
}

TEST_F(ServiceTest, TokensPerMinuteRefuseTheNextCall) {
  keys_text_ = "secret-a tenant-a tpm=10\nsecret-b tenant-b\n";
  Start({}, /*auth=*/true);
  // 3 prompt + 8 completion tokens: admitted below the limit, charged 11.
  ASSERT_TRUE(Generate(Request("hi", 8), "secret-a").status.ok());
  StreamResult refused = Generate(Request("hi", 8), "secret-a");
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("used 11 of its 10 tokens per minute"));
  EXPECT_THAT(refused.status.error_message(), HasSubstr("retry in"));
  EXPECT_TRUE(Generate(Request("hi", 8), "secret-b").status.ok());  // other tenants unaffected
}

TEST_F(ServiceTest, ClientThatReadsNothingIsCancelledAfterTheIdleTimeout) {
  FakeEngineOptions options;
  options.step = absl::ZeroDuration();
  options.text_bytes_per_token = 64 << 10;  // a few tokens fill the flow-control window
  idle_timeout_ = absl::Milliseconds(300);
  Start(options);
  // The whole output fits in max_buffered_tokens, so only the idle timeout
  // can end the call: the engine finishes and the last write never completes.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  grpc::ClientContext context;
  SetDeadline(&context, 20000);
  const absl::Time start = absl::Now();
  auto reader = stub_->Generate(&context, Request("hi", 64));
  ASSERT_TRUE(Eventually([&] { return Metric("phi3_active_streams", {}) == 1; }));
  ASSERT_TRUE(Eventually([&] { return Metric("phi3_active_streams", {}) == 0; }));
  EXPECT_GE(absl::Now() - start, idle_timeout_);  // not before the client was idle that long
  EXPECT_EQ(core_->num_active(), 0);
  EXPECT_EQ(limiter_->open_streams("local"), 0);
  v1::GenerateResponse m;
  while (reader->Read(&m)) {}
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Generate(Request("hi", 2)).status.ok());  // still serving
}

TEST_F(ServiceTest, PromptBytesAreCheckedBeforeTokenizing) {
  Start();  // context 512: at most 64 * 512 = 32768 bytes
  StreamResult big = Generate(Request(std::string(40000, 'x'), 2));
  EXPECT_EQ(big.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(big.status.error_message(),
              HasSubstr("prompt is 40000 bytes, more than the limit of 32768 bytes"));
  grpc::ClientContext context;
  v1::TokenizeRequest req;
  req.set_text(std::string(40000, 'x'));
  v1::TokenizeResponse resp;
  grpc::Status s = stub_->Tokenize(&context, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("text is 40000 bytes"));
  v1::ChatRequest chat;
  for (int i = 0; i < 2; ++i) {
    auto* m = chat.add_messages();
    m->set_role(v1::ChatMessage::ROLE_USER);
    m->set_content(std::string(20000, 'y'));
  }
  grpc::ClientContext c2;
  SetDeadline(&c2);
  StreamResult chat_result = Drain(stub_->Chat(&c2, chat).get());
  EXPECT_EQ(chat_result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(chat_result.status.error_message(), HasSubstr("messages (contents summed) is 40000"));
}

}  // namespace
}  // namespace phi3::service
