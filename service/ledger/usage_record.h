// One finished request as the usage ledger stores it, and its line in the
// spill file.
//
// Never holds an API key: `key_id` is a stable, non-secret id derived from
// the key (service/auth.h).
#ifndef PHI3_SERVICE_LEDGER_USAGE_RECORD_H_
#define PHI3_SERVICE_LEDGER_USAGE_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace phi3::ledger {

struct UsageRecord {
  std::string request_id;      // unique across replicas; the primary key
  absl::Time finished_at;      // stored with microsecond precision
  std::string tenant;
  std::string key_id;          // "" without authentication
  std::string api;             // the front end, e.g. "grpc" or "http"
  std::string model_sha256;    // hex
  int64_t prompt_tokens = 0;   // as billed (engine/engine.h Usage)
  int64_t cached_prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double cost_usd = 0;
  std::string finish_reason;   // "stop", "length", "stop_sequence", "cancelled", "deadline", "error"
  std::string status_code;     // gRPC code name the call ended with, e.g. "OK"
  double queue_ms = 0;
  double ttft_ms = 0;
  double total_ms = 0;

  bool operator==(const UsageRecord&) const = default;
};

// One JSON object on one line, without the trailing newline.
std::string ToJsonLine(const UsageRecord& record);
// DataLoss naming what is wrong when `line` is not a record ToJsonLine wrote.
absl::StatusOr<UsageRecord> FromJsonLine(absl::string_view line);

}  // namespace phi3::ledger

#endif  // PHI3_SERVICE_LEDGER_USAGE_RECORD_H_
