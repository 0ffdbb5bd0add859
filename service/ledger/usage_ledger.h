// The durable usage ledger: every finished request's UsageRecord goes to a
// LedgerStore without ever blocking the caller.
//
// Record() only queues (bounded). One writer thread drains the queue in
// batches, each in one database transaction. When the database fails, the
// batch is appended to the spill file instead (fdatasync'd), the database is
// retried with exponential backoff, and once it takes writes again the
// spill file is written back in batches and then cleared. Writing back is
// idempotent (records are keyed by request_id), so a crash in the middle
// of it duplicates nothing.
//
// A record's `on_stored` callback runs, on the writer thread, once the record
// is durable: committed to the database or synced to the spill file. The
// service sends a call's final message only then, so after kill -9 every
// request whose client saw its end is in the database or the spill file
// (replayed at the next start). A record that could not be stored at all
// (queue full, or the spill file failing too) is counted as dropped and its
// callback runs anyway: clients are never held hostage by the ledger.
//
// Thread safety: Record, Flush and Stats may be called from any thread.
#ifndef PHI3_SERVICE_LEDGER_USAGE_LEDGER_H_
#define PHI3_SERVICE_LEDGER_USAGE_LEDGER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/ledger/ledger_store.h"
#include "service/ledger/spill_file.h"
#include "service/ledger/usage_record.h"

namespace phi3::ledger {

struct UsageLedgerOptions {
  std::string spill_path;           // required; one per process (it is locked)
  int max_queue_records = 10000;    // beyond this Record drops (and counts) the record
  int max_batch_records = 256;      // records per transaction
  absl::Duration min_retry = absl::Milliseconds(500);  // database retry backoff
  absl::Duration max_retry = absl::Seconds(30);
  // Warnings (database down / back, spill problems); default: stderr.
  std::function<void(absl::string_view)> log;
};

struct LedgerStats {
  int64_t queue_depth = 0;          // records waiting for the writer
  int64_t spilled_pending = 0;      // records in the spill file not yet written back
  int64_t records_written = 0;      // cumulative, to the database (write-backs included)
  int64_t records_spilled = 0;      // cumulative, to the spill file
  int64_t write_errors = 0;         // cumulative failed database or spill writes
  int64_t records_dropped = 0;      // cumulative, stored nowhere
  int64_t corrupt_spill_lines = 0;  // cumulative, skipped while writing back
  bool database_up = true;          // the last database write succeeded
};

class UsageLedger {
 public:
  // Takes over a spill file left by an earlier run (stats count its records
  // from here on) and starts the writer thread, which writes it back.
  // REQUIRES: store != nullptr, !options.spill_path.empty().
  UsageLedger(std::unique_ptr<LedgerStore> store, UsageLedgerOptions options);
  // Stores or spills everything queued, then stops the writer.
  ~UsageLedger();

  // Queues `record`; never blocks. `on_stored` (may be null) runs on the
  // writer thread once the record is durable or dropped, or right here when
  // the queue is full. It must not call back into the ledger.
  void Record(UsageRecord record, std::function<void()> on_stored);

  // Waits until everything recorded before the call is durable or dropped.
  void Flush();
  LedgerStats Stats() const;
  const std::string& description() const { return description_; }

 private:
  struct Entry {
    UsageRecord record;
    std::function<void()> on_stored;
  };

  void Loop();
  void OpenLeftoverSpill();
  // Database first unless it is down and not due for a retry; else spill.
  void Store(std::vector<Entry>& batch);
  // Writes back one batch of the spill file.
  void WriteBack();
  bool WriteBackDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AppendToDatabase(absl::Span<const UsageRecord> records);
  void Log(absl::string_view message) const;

  const std::unique_ptr<LedgerStore> store_;
  const UsageLedgerOptions options_;
  const std::string description_;

  // Writer-thread state.
  std::unique_ptr<SpillFile> spill_;
  int64_t write_back_offset_ = 0;      // bytes of the spill file already written back
  int64_t written_back_lines_ = 0;     // lines of it written back or skipped
  absl::Duration backoff_;

  mutable absl::Mutex mu_;
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // batches taken, callbacks not yet run
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time retry_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  LedgerStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread writer_;
};

}  // namespace phi3::ledger

#endif  // PHI3_SERVICE_LEDGER_USAGE_LEDGER_H_
