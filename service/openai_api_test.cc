#include "service/openai_api.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace phi3::service::openai {
namespace {

using ::nlohmann::json;
using ::testing::HasSubstr;

TEST(ParseRequest, CompletionOptionsMapToTheProto) {
  absl::StatusOr<Request> r = ParseRequest(Endpoint::kCompletions, R"({
    "model": "anything", "prompt": "Hello", "max_tokens": 7, "temperature": 0,
    "top_p": 0.5, "seed": 42, "stop": ["a", "b"], "presence_penalty": 0.25,
    "frequency_penalty": -0.5, "top_k": 40, "min_p": 0.1, "repetition_penalty": 1.1,
    "ignore_eos": true, "n": 1, "stream": true, "stream_options": {"include_usage": true},
    "user": "someone"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  const v1::GenerateRequest& g = r->generate;
  EXPECT_EQ(g.prompt(), "Hello");
  EXPECT_EQ(g.stop().max_tokens(), 7);
  EXPECT_TRUE(g.sampling().has_temperature());
  EXPECT_EQ(g.sampling().temperature(), 0.0f);
  EXPECT_EQ(g.sampling().top_p(), 0.5f);
  EXPECT_EQ(g.sampling().seed(), 42u);
  EXPECT_THAT(g.stop().stop(), ::testing::ElementsAre("a", "b"));
  EXPECT_EQ(g.sampling().presence_penalty(), 0.25f);
  EXPECT_EQ(g.sampling().frequency_penalty(), -0.5f);
  EXPECT_EQ(g.sampling().top_k(), 40);
  EXPECT_FLOAT_EQ(g.sampling().min_p(), 0.1f);
  EXPECT_FLOAT_EQ(g.sampling().repetition_penalty(), 1.1f);
  EXPECT_TRUE(g.stop().ignore_eos());
}

TEST(ParseRequest, UnsetOptionsStayUnset) {
  absl::StatusOr<Request> r = ParseRequest(Endpoint::kCompletions, R"({"prompt": ["Hi"]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->generate.prompt(), "Hi");
  EXPECT_FALSE(r->generate.sampling().has_temperature());
  EXPECT_FALSE(r->generate.sampling().has_top_p());
  EXPECT_EQ(r->generate.stop().max_tokens(), 0);  // the server's default
  EXPECT_FALSE(r->stream);
}

TEST(ParseRequest, TokenPromptAndChatMessages) {
  absl::StatusOr<Request> tokens =
      ParseRequest(Endpoint::kCompletions, R"({"prompt": [1, 15043, 3186], "stop": "x"})");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_THAT(tokens->generate.prompt_tokens(), ::testing::ElementsAre(1, 15043, 3186));
  EXPECT_THAT(tokens->generate.stop().stop(), ::testing::ElementsAre("x"));

  absl::StatusOr<Request> chat = ParseRequest(Endpoint::kChatCompletions, R"({
    "messages": [{"role": "developer", "content": "Be brief."},
                 {"role": "user", "content": [{"type": "text", "text": "Hi "},
                                              {"type": "text", "text": "there"}]},
                 {"role": "assistant", "content": null}],
    "max_completion_tokens": 5})");
  ASSERT_TRUE(chat.ok()) << chat.status();
  ASSERT_EQ(chat->chat.messages_size(), 3);
  EXPECT_EQ(chat->chat.messages(0).role(), v1::ChatMessage::ROLE_SYSTEM);
  EXPECT_EQ(chat->chat.messages(1).content(), "Hi there");
  EXPECT_EQ(chat->chat.messages(2).role(), v1::ChatMessage::ROLE_ASSISTANT);
  EXPECT_EQ(chat->chat.stop().max_tokens(), 5);
}

TEST(ParseRequest, ErrorsNameTheField) {
  struct Case {
    Endpoint endpoint;
    const char* body;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {Endpoint::kCompletions, "{", "not valid JSON"},
           {Endpoint::kCompletions, "[]", "the body must be a JSON object"},
           {Endpoint::kCompletions, R"({})", "prompt is missing"},
           {Endpoint::kCompletions, R"({"prompt": 5})", "prompt must be a string"},
           {Endpoint::kCompletions, R"({"prompt": "x", "max_tokens": 0})",
            "max_tokens must be at least 1, got 0"},
           {Endpoint::kCompletions, R"({"prompt": "x", "temperature": "hot"})",
            "temperature must be a number, got string"},
           {Endpoint::kCompletions, R"({"prompt": "x", "n": 2})", "n must be 1, got 2"},
           {Endpoint::kCompletions, R"({"prompt": "x", "echo": true})", "echo is not supported"},
           {Endpoint::kCompletions, R"({"prompt": "x", "logprobs": 2})", "logprobs"},
           {Endpoint::kCompletions, R"({"prompt": "x", "stop": [1]})", "stop[0] must be a string"},
           {Endpoint::kChatCompletions, R"({"messages": "hi"})", "messages must be an array"},
           {Endpoint::kChatCompletions, R"({"messages": [{"role": "tool", "content": "x"}]})",
            "messages[0].role must be system, developer, user or assistant, got \"tool\""},
           {Endpoint::kChatCompletions,
            R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
            "messages[0].content[0] must be"},
           {Endpoint::kChatCompletions,
            R"({"messages": [{"role": "user", "content": "x"}], "tools": [{}]})",
            "tools is not supported"},
       }) {
    absl::StatusOr<Request> r = ParseRequest(c.endpoint, c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message)) << c.body;
  }
}

TEST(Responses, CompletionAndChatObjects) {
  const ResponseHeader header{"cmpl-1", 1700000000, "phi3"};
  v1::GenerateResponse last;
  last.set_finish_reason(v1::FINISH_REASON_STOP_SEQUENCE);
  last.mutable_usage()->set_prompt_tokens(5);
  last.mutable_usage()->set_cached_prompt_tokens(2);
  last.mutable_usage()->set_completion_tokens(3);
  const json c = CompletionResponse(Endpoint::kCompletions, header, "abc", last);
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["model"], "phi3");
  EXPECT_EQ(c["choices"][0]["text"], "abc");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"]["total_tokens"], 8);
  EXPECT_EQ(c["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
  const json chat = CompletionResponse(Endpoint::kChatCompletions, header, "abc", last);
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(chat["choices"][0]["message"]["content"], "abc");
}

TEST(Responses, StreamChunks) {
  Request request;
  request.endpoint = Endpoint::kChatCompletions;
  request.include_usage = true;
  const ResponseHeader header{"chatcmpl-1", 1, "phi3"};
  const json first = StreamChunk(request, header, "He", /*first=*/true, nullptr);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "He");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(first.contains("usage") && first["usage"].is_null());
  v1::GenerateResponse last;
  last.set_finish_reason(v1::FINISH_REASON_LENGTH);
  last.mutable_usage()->set_prompt_tokens(4);
  last.mutable_usage()->set_completion_tokens(2);
  const json end = StreamChunk(request, header, "", false, &last);
  EXPECT_EQ(end["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(end["choices"][0]["delta"], json::object());
  const json usage = UsageChunk(request, header, last.usage());
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"]["total_tokens"], 6);
}

TEST(Errors, HttpStatusAndBody) {
  EXPECT_EQ(HttpStatusOf(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpStatusOf(absl::UnauthenticatedError("x")), 401);
  EXPECT_EQ(HttpStatusOf(absl::NotFoundError("x")), 404);
  EXPECT_EQ(HttpStatusOf(absl::ResourceExhaustedError("x")), 429);
  EXPECT_EQ(HttpStatusOf(absl::UnavailableError("x")), 503);
  EXPECT_EQ(HttpStatusOf(absl::InternalError("x")), 500);
  const json body = ErrorBody(absl::UnauthenticatedError("missing key"));
  EXPECT_EQ(body["error"]["message"], "missing key");
  EXPECT_EQ(body["error"]["type"], "authentication_error");
  EXPECT_EQ(body["error"]["code"], "UNAUTHENTICATED");
}

}  // namespace
}  // namespace phi3::service::openai
