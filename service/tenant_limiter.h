// Per-tenant admission limits, transport-neutral: open streams, tokens per
// minute and tokens per UTC day (TenantLimits from the keys file).
//
// Token limits are checked when a request is admitted and charged when it
// finishes (prompt + completion tokens as reported in its usage): a request
// is admitted while the tenant's count is below its limit, so the request that
// crosses a limit finishes, and the next one is refused. The per-minute window
// slides over 60 one-second buckets; the day is the UTC calendar day.
//
// Refusals are ResourceExhausted whose message says which limit, the count and
// when to retry, with the same delay as a retry_hint.h payload.
//
// Counts live in memory. So that a restart does not give every tenant a fresh
// day, the server restores the day's totals from the usage ledger at start-up
// (restore_daily_usage.h); the per-minute window starts empty. With several
// replicas each one limits what it serves itself.
//
// Thread safety: all methods may be called from any thread.
#ifndef PHI3_SERVICE_TENANT_LIMITER_H_
#define PHI3_SERVICE_TENANT_LIMITER_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/auth.h"

namespace phi3::service {

struct TenantLimiterOptions {
  // Open streams per tenant when its keys-file line gives no streams=N;
  // 0 = no limit.
  int default_max_streams = 128;
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

class TenantLimiter {
 public:
  explicit TenantLimiter(TenantLimiterOptions options);

  // One open stream of a tenant, given back on destruction. Move-only.
  // REQUIRES: the limiter outlives its slots.
  class StreamSlot {
   public:
    StreamSlot() = default;
    StreamSlot(StreamSlot&& other) noexcept;
    StreamSlot& operator=(StreamSlot&& other) noexcept;
    ~StreamSlot() { Release(); }
    void Release();

   private:
    friend class TenantLimiter;
    StreamSlot(TenantLimiter* limiter, std::string tenant)
        : limiter_(limiter), tenant_(std::move(tenant)) {}
    TenantLimiter* limiter_ = nullptr;
    std::string tenant_;
  };

  // Admits one stream of `caller`: checks its token limits, then takes one of
  // its stream slots. ResourceExhausted (with a retry delay) when over a limit.
  absl::StatusOr<StreamSlot> AdmitStream(const Caller& caller);
  // Counts `tokens` against `tenant`'s per-minute and per-day limits.
  void Charge(absl::string_view tenant, int64_t tokens);
  // Counts `tokens` that `tenant` used earlier in the current UTC day (before
  // a restart) against its per-day limit only.
  void RestoreToday(absl::string_view tenant, int64_t tokens);

  int open_streams(absl::string_view tenant) const;

 private:
  static constexpr int kWindowSeconds = 60;
  struct TenantState {
    int open_streams = 0;
    // Tokens charged in second `second[i]`, bucket i = second % 60.
    std::array<int64_t, kWindowSeconds> tokens{};
    std::array<int64_t, kWindowSeconds> second{};
    int64_t day = 0;  // days since the epoch (UTC) of tokens_today
    int64_t tokens_today = 0;
  };
  absl::Status CheckTokens(const Caller& caller, const TenantState& state, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseStream(const std::string& tenant);
  static void AddToday(TenantState& state, int64_t now_s, int64_t tokens);

  const TenantLimiterOptions options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, TenantState> tenants_ ABSL_GUARDED_BY(mu_);
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_TENANT_LIMITER_H_
