// Request conversion: proto bytes -> v1::GenerateRequest / v1::ChatRequest ->
// ConvertGenerate / ConvertChat against the fake engine (its tokenizer is one
// token per byte). Input: one selector byte, then the serialized request.
// Properties: a converted request passes the engine's ValidateRequest, fits
// the context and carries the tenant; an error is InvalidArgument with a
// message.
#include <cstdint>

#include "engine/engine.h"
#include "google/protobuf/stubs/logging.h"
#include "proto/phi3/v1/phi3.pb.h"
#include "service/request_convert.h"
#include "service/testing/fake_engine.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static phi3::service::testing::FakeEngine* engine = [] {
    // Invalid UTF-8 in string fields is a parse failure; protobuf's log line
    // for each one would only slow the fuzzer down.
    google::protobuf::SetLogHandler(nullptr);
    return new phi3::service::testing::FakeEngine(phi3::service::testing::FakeEngineOptions{});
  }();
  if (size == 0) return 0;
  phi3::service::RequestLimits limits;
  limits.context_size = engine->Info().context_size;
  limits.vocab_size = engine->Info().vocab_size;
  absl::StatusOr<phi3::GenerateRequest> request;
  if (data[0] & 1) {
    phi3::v1::ChatRequest proto;
    if (!proto.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
    request = phi3::service::ConvertChat(proto, *engine, limits, "fuzz");
  } else {
    phi3::v1::GenerateRequest proto;
    if (!proto.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
    request = phi3::service::ConvertGenerate(proto, *engine, limits, "fuzz");
  }
  if (!request.ok()) {
    FUZZ_CHECK(request.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(!request.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(request->tenant == "fuzz");
  FUZZ_CHECK(phi3::ValidateRequest(*request, limits.context_size, limits.vocab_size).ok());
  FUZZ_CHECK(static_cast<int64_t>(request->prompt_tokens.size()) <= limits.context_size);
  return 0;
}
