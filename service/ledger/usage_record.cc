#include "service/ledger/usage_record.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace phi3::ledger {

std::string ToJsonLine(const UsageRecord& r) {
  const nlohmann::json j = {
      {"request_id", r.request_id},
      {"finished_at_us", absl::ToUnixMicros(r.finished_at)},
      {"tenant", r.tenant},
      {"key_id", r.key_id},
      {"api", r.api},
      {"model_sha256", r.model_sha256},
      {"prompt_tokens", r.prompt_tokens},
      {"cached_prompt_tokens", r.cached_prompt_tokens},
      {"completion_tokens", r.completion_tokens},
      {"cost_usd", r.cost_usd},
      {"finish_reason", r.finish_reason},
      {"status_code", r.status_code},
      {"queue_ms", r.queue_ms},
      {"ttft_ms", r.ttft_ms},
      {"total_ms", r.total_ms},
  };
  // Replacement instead of an exception on invalid UTF-8 (tenant names come
  // from the keys file).
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<UsageRecord> FromJsonLine(absl::string_view line) {
  try {
    const nlohmann::json j = nlohmann::json::parse(line.begin(), line.end());
    UsageRecord r;
    r.request_id = j.at("request_id").get<std::string>();
    r.finished_at = absl::FromUnixMicros(j.at("finished_at_us").get<int64_t>());
    r.tenant = j.at("tenant").get<std::string>();
    r.key_id = j.at("key_id").get<std::string>();
    r.api = j.at("api").get<std::string>();
    r.model_sha256 = j.at("model_sha256").get<std::string>();
    r.prompt_tokens = j.at("prompt_tokens").get<int64_t>();
    r.cached_prompt_tokens = j.at("cached_prompt_tokens").get<int64_t>();
    r.completion_tokens = j.at("completion_tokens").get<int64_t>();
    r.cost_usd = j.at("cost_usd").get<double>();
    r.finish_reason = j.at("finish_reason").get<std::string>();
    r.status_code = j.at("status_code").get<std::string>();
    r.queue_ms = j.at("queue_ms").get<double>();
    r.ttft_ms = j.at("ttft_ms").get<double>();
    r.total_ms = j.at("total_ms").get<double>();
    if (r.request_id.empty()) return absl::DataLossError("usage record without request_id");
    return r;
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("not a usage record: ", e.what()));
  }
}

}  // namespace phi3::ledger
