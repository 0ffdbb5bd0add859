// What the service records about a request the engine ran, besides metrics:
// its id, how its end is reported, and its usage-ledger record.
#ifndef PHI3_SERVICE_ACCOUNTING_H_
#define PHI3_SERVICE_ACCOUNTING_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "service/ledger/usage_record.h"

namespace phi3::service {

// 32 hex digits of a random 128-bit value: unique across replicas sharing a
// ledger.
std::string NewRequestId();

// The engine deadline for a call whose own deadline is `call_deadline`: a
// little earlier, so that when the engine ends the call the status
// (DEADLINE_EXCEEDED) and the usage trailer reach the client before the
// client's own timer ends the call without them.
absl::Time EngineDeadline(absl::Time call_deadline);

// How the service reports an engine finish reason. The engine sees a call
// whose deadline passed as cancelled (gRPC cancels such calls): that is a
// deadline expiry, labelled and billed as one.
FinishReason ReportedReason(FinishReason engine_reason, bool deadline_passed);

// "stop", "length", ..., the label metrics and the ledger use.
const char* ReasonLabel(FinishReason reason);

struct FinishedRequest {
  std::string request_id;
  std::string tenant;
  std::string key_id;
  std::string api;  // "grpc", "http"
  FinishReason reason = FinishReason::kStop;
  absl::string_view status_code;  // gRPC code name
  Usage usage;
  double cost_usd = 0;
  Timings timings;
};
ledger::UsageRecord ToUsageRecord(const FinishedRequest& request, absl::string_view model_sha256,
                                  absl::Time finished_at);

}  // namespace phi3::service

#endif  // PHI3_SERVICE_ACCOUNTING_H_
