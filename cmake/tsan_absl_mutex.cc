// Linked into every program of a ThreadSanitizer build (PHI3_SANITIZE=thread)
// through -Wl,--wrap: tells TSan when an absl::Mutex is locked and unlocked.
//
// Why: Debian's abseil is not built with -fsanitize=thread, so the locking
// inside libabsl_synchronization is invisible to TSan, and every access
// guarded by an absl::Mutex would be reported as a race. abseil's headers
// already announce each Mutex to TSan (__tsan_mutex_create in the inline
// constructor); these wrappers add the lock and unlock events around the
// library's out-of-line functions. Await* would evaluate its condition inside
// the library, under a lock TSan cannot see, so it is replaced by a polling
// loop over the wrapped Lock/Unlock (1 ms steps: fine for a test build).
#include <sanitizer/tsan_interface.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

using absl::Condition;
using absl::Duration;
using absl::Mutex;
using absl::Time;

extern "C" {
void __real__ZN4absl7debian35Mutex4LockEv(Mutex* mu);
void __real__ZN4absl7debian35Mutex6UnlockEv(Mutex* mu);
void __real__ZN4absl7debian35MutexD1Ev(Mutex* mu);
}

namespace {

void Locked(Mutex* mu) {
  __tsan_mutex_pre_lock(mu, 0);
  __tsan_mutex_post_lock(mu, 0, 0);
}
void Unlocking(Mutex* mu) {
  __tsan_mutex_pre_unlock(mu, 0);
  __tsan_mutex_post_unlock(mu, 0);
}

}  // namespace

extern "C" {

void __wrap__ZN4absl7debian35Mutex4LockEv(Mutex* mu) {
  __real__ZN4absl7debian35Mutex4LockEv(mu);
  Locked(mu);
}

void __wrap__ZN4absl7debian35Mutex6UnlockEv(Mutex* mu) {
  Unlocking(mu);
  __real__ZN4absl7debian35Mutex6UnlockEv(mu);
}

void __wrap__ZN4absl7debian35MutexD1Ev(Mutex* mu) {
  __tsan_mutex_destroy(mu, 0);
  __real__ZN4absl7debian35MutexD1Ev(mu);
}

bool __wrap__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    Mutex* mu, const Condition& cond, Time deadline) {
  // REQUIRES: mu held, as for Mutex::Await.
  while (!cond.Eval()) {
    if (absl::Now() >= deadline) return false;
    __wrap__ZN4absl7debian35Mutex6UnlockEv(mu);
    absl::SleepFor(absl::Milliseconds(1));
    __wrap__ZN4absl7debian35Mutex4LockEv(mu);
  }
  return true;
}

bool __wrap__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    Mutex* mu, const Condition& cond, Duration timeout) {
  return __wrap__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
      mu, cond, absl::Now() + timeout);
}

void __wrap__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(Mutex* mu, const Condition& cond) {
  __wrap__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
      mu, cond, absl::InfiniteFuture());
}

}  // extern "C"
