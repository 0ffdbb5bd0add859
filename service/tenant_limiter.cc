#include "service/tenant_limiter.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "service/retry_hint.h"

namespace phi3::service {
namespace {

constexpr int64_t kSecondsPerDay = 86400;

absl::Status Exhausted(absl::string_view message, absl::Duration retry_after) {
  const absl::Duration rounded = absl::Ceil(retry_after, absl::Seconds(1));
  return WithRetryDelay(absl::ResourceExhaustedError(absl::StrCat(
                            message, "; retry in ", absl::FormatDuration(rounded))),
                        retry_after);
}

}  // namespace

TenantLimiter::TenantLimiter(TenantLimiterOptions options) : options_(std::move(options)) {}

TenantLimiter::StreamSlot::StreamSlot(StreamSlot&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), tenant_(std::move(other.tenant_)) {}

TenantLimiter::StreamSlot& TenantLimiter::StreamSlot::operator=(StreamSlot&& other) noexcept {
  if (this != &other) {
    Release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    tenant_ = std::move(other.tenant_);
  }
  return *this;
}

void TenantLimiter::StreamSlot::Release() {
  if (limiter_ != nullptr) std::exchange(limiter_, nullptr)->ReleaseStream(tenant_);
}

absl::Status TenantLimiter::CheckTokens(const Caller& caller, const TenantState& state,
                                        absl::Time now) const {
  const int64_t now_s = absl::ToUnixSeconds(now);
  if (const int64_t limit = caller.limits.tokens_per_day; limit > 0) {
    const int64_t today = now_s / kSecondsPerDay;
    const int64_t used = state.day == today ? state.tokens_today : 0;
    if (used >= limit) {
      return Exhausted(absl::StrCat("tenant ", caller.tenant, " used ", used, " of its ", limit,
                                    " tokens per day (UTC)"),
                       absl::FromUnixSeconds((today + 1) * kSecondsPerDay) - now);
    }
  }
  if (const int64_t limit = caller.limits.tokens_per_minute; limit > 0) {
    int64_t used = 0;
    for (int i = 0; i < kWindowSeconds; ++i) {
      if (state.second[i] > now_s - kWindowSeconds) used += state.tokens[i];
    }
    if (used >= limit) {
      // The window drops its oldest seconds first: wait until enough have gone.
      int64_t remaining = used;
      int64_t free_at = now_s + 1;
      for (int64_t s = now_s - kWindowSeconds + 1; s <= now_s; ++s) {
        const int i = static_cast<int>(s % kWindowSeconds);
        if (state.second[i] != s) continue;
        remaining -= state.tokens[i];
        if (remaining < limit) {
          free_at = s + kWindowSeconds;
          break;
        }
      }
      return Exhausted(absl::StrCat("tenant ", caller.tenant, " used ", used, " of its ", limit,
                                    " tokens per minute"),
                       absl::FromUnixSeconds(free_at) - now);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TenantLimiter::StreamSlot> TenantLimiter::AdmitStream(const Caller& caller) {
  const absl::Time now = options_.clock();
  const int max_streams = caller.limits.max_streams > 0 ? caller.limits.max_streams
                                                        : options_.default_max_streams;
  absl::MutexLock lock(&mu_);
  TenantState& state = tenants_[caller.tenant];
  if (absl::Status s = CheckTokens(caller, state, now); !s.ok()) return s;
  if (max_streams > 0 && state.open_streams >= max_streams) {
    // No time is known when a stream ends; a second is a polite first retry.
    return Exhausted(absl::StrCat("tenant ", caller.tenant, " has ", state.open_streams,
                                  " open streams, at most ", max_streams),
                     absl::Seconds(1));
  }
  ++state.open_streams;
  return StreamSlot(this, caller.tenant);
}

void TenantLimiter::Charge(absl::string_view tenant, int64_t tokens) {
  if (tokens <= 0) return;
  const int64_t now_s = absl::ToUnixSeconds(options_.clock());
  absl::MutexLock lock(&mu_);
  TenantState& state = tenants_[tenant];
  const int i = static_cast<int>(now_s % kWindowSeconds);
  if (state.second[i] != now_s) {
    state.second[i] = now_s;
    state.tokens[i] = 0;
  }
  state.tokens[i] += tokens;
  AddToday(state, now_s, tokens);
}

void TenantLimiter::RestoreToday(absl::string_view tenant, int64_t tokens) {
  if (tokens <= 0) return;
  const int64_t now_s = absl::ToUnixSeconds(options_.clock());
  absl::MutexLock lock(&mu_);
  AddToday(tenants_[tenant], now_s, tokens);
}

void TenantLimiter::AddToday(TenantState& state, int64_t now_s, int64_t tokens) {
  const int64_t today = now_s / kSecondsPerDay;
  if (state.day != today) {
    state.day = today;
    state.tokens_today = 0;
  }
  state.tokens_today += tokens;
}

void TenantLimiter::ReleaseStream(const std::string& tenant) {
  absl::MutexLock lock(&mu_);
  --tenants_[tenant].open_streams;
}

int TenantLimiter::open_streams(absl::string_view tenant) const {
  absl::MutexLock lock(&mu_);
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? 0 : it->second.open_streams;
}

}  // namespace phi3::service
