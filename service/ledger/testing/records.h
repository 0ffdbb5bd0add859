// Usage records for the ledger's tests.
#ifndef PHI3_SERVICE_LEDGER_TESTING_RECORDS_H_
#define PHI3_SERVICE_LEDGER_TESTING_RECORDS_H_

#include <string>

#include "absl/time/time.h"
#include "service/ledger/usage_record.h"

namespace phi3::ledger::testing {

inline const absl::Time kDay1 = absl::FromUnixSeconds(1'764'720'000);  // 2025-12-03 00:00 UTC

inline UsageRecord Rec(const std::string& id, const std::string& tenant, absl::Time at,
                       int prompt, int cached, int completion, double cost) {
  UsageRecord r;
  r.request_id = id;
  r.finished_at = at;
  r.tenant = tenant;
  r.key_id = "abcdef012345";
  r.api = "grpc";
  r.model_sha256 = std::string(64, 'a');
  r.prompt_tokens = prompt;
  r.cached_prompt_tokens = cached;
  r.completion_tokens = completion;
  r.cost_usd = cost;
  r.finish_reason = "stop";
  r.status_code = "OK";
  r.queue_ms = 1;
  r.ttft_ms = 2;
  r.total_ms = 3;
  return r;
}

}  // namespace phi3::ledger::testing

#endif  // PHI3_SERVICE_LEDGER_TESTING_RECORDS_H_
