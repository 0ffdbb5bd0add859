#include "service/request_convert.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/testing/fake_engine.h"

namespace phi3::service {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RequestConvertTest : public ::testing::Test {
 protected:
  RequestConvertTest() : engine_(testing::FakeEngineOptions{}) {
    limits_.context_size = 64;
    limits_.vocab_size = 300;
    limits_.max_stop_strings = 2;  // tighter than the engine's
    limits_.default_max_tokens = 10;
  }
  // The error of converting `request`, which must fail with INVALID_ARGUMENT.
  std::string Error(const v1::GenerateRequest& request) {
    absl::StatusOr<GenerateRequest> r = ConvertGenerate(request, engine_, limits_, "t");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    return std::string(r.status().message());
  }
  v1::GenerateRequest Valid() {
    v1::GenerateRequest r;
    r.set_prompt("hi");
    return r;
  }
  testing::FakeEngine engine_;
  RequestLimits limits_;
};

TEST_F(RequestConvertTest, DefaultsMatchTheProtoDocumentation) {
  absl::StatusOr<GenerateRequest> r = ConvertGenerate(Valid(), engine_, limits_, "acme");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tenant, "acme");
  EXPECT_THAT(r->prompt_tokens, ElementsAre(1, 3 + 'h', 3 + 'i'));  // BOS added
  EXPECT_EQ(r->sampling.temperature, 1.0f);
  EXPECT_EQ(r->sampling.top_p, 1.0f);
  EXPECT_EQ(r->sampling.repetition_penalty, 1.0f);
  EXPECT_EQ(r->stop.max_tokens, 10);
  EXPECT_FALSE(r->sampling.logprobs);
}

TEST_F(RequestConvertTest, CopiesOptions) {
  v1::GenerateRequest req = Valid();
  req.set_add_special(false);
  auto* s = req.mutable_sampling();
  s->set_temperature(0);
  s->set_top_k(5);
  s->set_top_p(0.5f);
  s->set_min_p(0.1f);
  s->set_seed(42);
  s->set_top_logprobs(3);
  req.mutable_stop()->set_max_tokens(7);
  req.mutable_stop()->add_stop("x");
  req.mutable_stop()->add_stop_token_ids(9);
  req.mutable_stop()->set_ignore_eos(true);
  absl::StatusOr<GenerateRequest> r = ConvertGenerate(req, engine_, limits_, "t");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->prompt_tokens, ElementsAre(3 + 'h', 3 + 'i'));
  EXPECT_EQ(r->sampling.temperature, 0.0f);
  EXPECT_EQ(r->sampling.top_k, 5);
  EXPECT_EQ(r->sampling.seed, 42u);
  EXPECT_TRUE(r->sampling.logprobs);
  EXPECT_EQ(r->sampling.num_top_logprobs, 3);
  EXPECT_EQ(r->stop.max_tokens, 7);
  EXPECT_THAT(r->stop.stop_strings, ElementsAre("x"));
  EXPECT_THAT(r->stop.stop_token_ids, ElementsAre(9));
  EXPECT_TRUE(r->stop.ignore_eos);
}

TEST_F(RequestConvertTest, EmptyPrompt) {
  v1::GenerateRequest req;
  EXPECT_THAT(Error(req), HasSubstr("prompt is empty"));
  req.set_add_special(false);
  req.set_prompt("");
  EXPECT_THAT(Error(req), HasSubstr("0 tokens"));
}

TEST_F(RequestConvertTest, PromptPlusMaxTokensBeyondContext) {
  v1::GenerateRequest req = Valid();  // 3 tokens
  req.mutable_stop()->set_max_tokens(62);
  EXPECT_THAT(Error(req), AllOf(HasSubstr("prompt (3 tokens)"), HasSubstr("max_tokens (62)"),
                                HasSubstr("= 65"), HasSubstr("context size of 64")));
  req.mutable_stop()->set_max_tokens(61);
  EXPECT_TRUE(ConvertGenerate(req, engine_, limits_, "t").ok());
}

TEST_F(RequestConvertTest, BothPromptKindsOrBadIds) {
  v1::GenerateRequest req = Valid();
  req.add_prompt_tokens(5);
  EXPECT_THAT(Error(req), HasSubstr("not both"));
  v1::GenerateRequest ids;
  ids.add_prompt_tokens(5);
  ids.add_prompt_tokens(300);
  EXPECT_THAT(Error(ids), AllOf(HasSubstr("prompt_tokens[1] = 300"), HasSubstr("[0, 300)")));
}

TEST_F(RequestConvertTest, SamplingRanges) {
  struct Case {
    void (*set)(v1::SamplingOptions*);
    const char* expected;
  };
  const Case cases[] = {
      {[](v1::SamplingOptions* s) { s->set_temperature(2.5f); }, "sampling.temperature must be in [0, 2], got 2.5"},
      {[](v1::SamplingOptions* s) { s->set_temperature(-1); }, "sampling.temperature"},
      {[](v1::SamplingOptions* s) { s->set_top_k(-1); }, "sampling.top_k"},
      {[](v1::SamplingOptions* s) { s->set_top_p(0); }, "sampling.top_p must be in (0, 1], got 0"},
      {[](v1::SamplingOptions* s) { s->set_top_p(1.5f); }, "sampling.top_p"},
      {[](v1::SamplingOptions* s) { s->set_min_p(1); }, "sampling.min_p must be in [0, 1), got 1"},
      {[](v1::SamplingOptions* s) { s->set_repetition_penalty(0); }, "sampling.repetition_penalty"},
      {[](v1::SamplingOptions* s) { s->set_presence_penalty(3); }, "sampling.presence_penalty must be in [-2, 2], got 3"},
      {[](v1::SamplingOptions* s) { s->set_frequency_penalty(-3); }, "sampling.frequency_penalty"},
      {[](v1::SamplingOptions* s) { s->set_repetition_penalty(10.5f); },
       "sampling.repetition_penalty must be in (0, 10], got 10.5"},
      {[](v1::SamplingOptions* s) { s->set_top_logprobs(21); },
       "sampling.num_top_logprobs must be in [0, 20], got 21"},
  };
  for (const Case& c : cases) {
    v1::GenerateRequest req = Valid();
    c.set(req.mutable_sampling());
    EXPECT_THAT(Error(req), HasSubstr(c.expected));
  }
}

TEST_F(RequestConvertTest, StopOptions) {
  v1::GenerateRequest req = Valid();
  req.mutable_stop()->set_max_tokens(-1);
  EXPECT_THAT(Error(req), HasSubstr("stop.max_tokens must be in [1, context size], got -1"));
  req = Valid();
  for (int i = 0; i < 3; ++i) req.mutable_stop()->add_stop("s");
  EXPECT_THAT(Error(req), HasSubstr("too many stop strings: 3 given, at most 2"));
  req = Valid();
  req.mutable_stop()->add_stop("");
  EXPECT_THAT(Error(req), HasSubstr("stop.stop_strings[0] is empty"));
  req = Valid();
  req.mutable_stop()->add_stop(std::string(kMaxStopStringBytes + 1, 'x'));
  EXPECT_THAT(Error(req), HasSubstr("stop.stop_strings[0] is 257 bytes, at most 256"));
  req = Valid();
  req.mutable_stop()->add_stop_token_ids(-2);
  EXPECT_THAT(Error(req), HasSubstr("stop.stop_token_ids[0] = -2"));
  req = Valid();
  for (int i = 0; i < 65; ++i) req.mutable_stop()->add_stop_token_ids(5);
  EXPECT_THAT(Error(req), HasSubstr("too many stop token ids: 65 given, at most 64"));
}

// The service accepts exactly the engine's ranges: a value at the edge of the
// engine's table passes conversion (the engine would accept it too).
TEST_F(RequestConvertTest, AcceptsTheEnginesRangesExactly) {
  v1::GenerateRequest req = Valid();
  auto* s = req.mutable_sampling();
  s->set_temperature(kMaxTemperature);
  s->set_repetition_penalty(kMaxRepetitionPenalty);
  s->set_presence_penalty(-kMaxPenalty);
  s->set_frequency_penalty(kMaxPenalty);
  s->set_top_logprobs(kMaxTopLogprobs);
  absl::StatusOr<GenerateRequest> r = ConvertGenerate(req, engine_, limits_, "t");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(ValidateRequest(*r, limits_.context_size, limits_.vocab_size).ok());
  s->set_temperature(std::nextafter(kMaxTemperature, 3.0f));
  EXPECT_THAT(Error(req), HasSubstr("sampling.temperature must be in [0, 2]"));
}

TEST(RequestLimitsTest, MayOnlyTightenTheEngines) {
  RequestLimits limits;
  EXPECT_TRUE(ValidateRequestLimits(limits).ok());
  limits.max_stop_strings = 0;
  EXPECT_TRUE(ValidateRequestLimits(limits).ok());
  limits.max_stop_strings = kMaxStopStrings + 1;
  absl::Status s = ValidateRequestLimits(limits);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("max_stop_strings = 17 is out of range: expected [0, 16]"));
  limits = RequestLimits();
  limits.default_max_tokens = 0;
  EXPECT_THAT(ValidateRequestLimits(limits).message(), HasSubstr("default_max_tokens = 0"));
}

TEST_F(RequestConvertTest, Chat) {
  v1::ChatRequest chat;
  absl::StatusOr<GenerateRequest> empty = ConvertChat(chat, engine_, limits_, "t");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("messages is empty"));
  auto* m = chat.add_messages();
  m->set_content("hi");
  absl::StatusOr<GenerateRequest> no_role = ConvertChat(chat, engine_, limits_, "t");
  EXPECT_THAT(no_role.status().message(), HasSubstr("messages[0].role"));
  m->set_role(v1::ChatMessage::ROLE_USER);
  absl::StatusOr<GenerateRequest> ok = ConvertChat(chat, engine_, limits_, "t");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(engine_.Detokenize(ok->prompt_tokens), "U:hi\nA:");
}

TEST(ToProto, FinishReasons) {
  EXPECT_EQ(ToProto(FinishReason::kStop), v1::FINISH_REASON_STOP);
  EXPECT_EQ(ToProto(FinishReason::kLength), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(ToProto(FinishReason::kStopSequence), v1::FINISH_REASON_STOP_SEQUENCE);
  EXPECT_EQ(ToProto(FinishReason::kCancelled), v1::FINISH_REASON_CANCELLED);
  EXPECT_EQ(ToProto(FinishReason::kDeadline), v1::FINISH_REASON_DEADLINE);
  EXPECT_EQ(ToProto(FinishReason::kError), v1::FINISH_REASON_ERROR);
}

}  // namespace
}  // namespace phi3::service
