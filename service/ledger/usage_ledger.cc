#include "service/ledger/usage_ledger.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"

namespace phi3::ledger {

UsageLedger::UsageLedger(std::unique_ptr<LedgerStore> store, UsageLedgerOptions options)
    : store_(std::move(store)),
      options_(std::move(options)),
      description_(store_->Describe()),
      backoff_(options_.min_retry) {
  OpenLeftoverSpill();
  writer_ = std::thread([this] { Loop(); });
}

UsageLedger::~UsageLedger() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  writer_.join();
}

void UsageLedger::Log(absl::string_view message) const {
  if (options_.log) {
    options_.log(message);
  } else {
    std::fprintf(stderr, "usage ledger: %.*s\n", static_cast<int>(message.size()), message.data());
  }
}

void UsageLedger::Record(UsageRecord record, std::function<void()> on_stored) {
  {
    absl::MutexLock lock(&mu_);
    if (static_cast<int>(queue_.size()) < options_.max_queue_records) {
      queue_.push_back({std::move(record), std::move(on_stored)});
      stats_.queue_depth = static_cast<int64_t>(queue_.size());
      return;
    }
    if (stats_.records_dropped++ == 0) {
      Log(absl::StrCat("queue full (", options_.max_queue_records,
                       " records): dropping records; see phi3_ledger_records_dropped_total"));
    }
  }
  if (on_stored) on_stored();
}

void UsageLedger::Flush() {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.empty() && in_flight_ == 0;
  };
  mu_.Await(absl::Condition(&idle));
}

LedgerStats UsageLedger::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

bool UsageLedger::WriteBackDue() const {
  return stats_.spilled_pending > 0 && (stats_.database_up || absl::Now() >= retry_at_);
}

void UsageLedger::OpenLeftoverSpill() {
  struct stat st;
  if (stat(options_.spill_path.c_str(), &st) != 0 || st.st_size == 0) return;
  absl::StatusOr<std::unique_ptr<SpillFile>> spill = SpillFile::Open(options_.spill_path);
  if (!spill.ok()) {
    // Held by another live server (it writes it back) or unreadable.
    Log(absl::StrCat("not writing back ", options_.spill_path, ": ", spill.status().message()));
    return;
  }
  spill_ = *std::move(spill);
  absl::MutexLock lock(&mu_);
  stats_.spilled_pending = spill_->num_lines();
  if (spill_->num_lines() > 0) {
    Log(absl::StrCat(spill_->num_lines(), " records in ", options_.spill_path,
                     " from an earlier run: writing them back to ", description_));
  }
}

absl::Status UsageLedger::AppendToDatabase(absl::Span<const UsageRecord> records) {
  absl::Status status = store_->Append(records);
  absl::MutexLock lock(&mu_);
  if (status.ok()) {
    stats_.records_written += static_cast<int64_t>(records.size());
    if (!stats_.database_up) Log(absl::StrCat(description_, " takes writes again"));
    stats_.database_up = true;
    backoff_ = options_.min_retry;
    return status;
  }
  ++stats_.write_errors;
  if (stats_.database_up) {
    Log(absl::StrCat("cannot write to the database, spilling to ", options_.spill_path, ": ",
                     status.message()));
  }
  stats_.database_up = false;
  retry_at_ = absl::Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_retry);
  return status;
}

void UsageLedger::Store(std::vector<Entry>& batch) {
  std::vector<UsageRecord> records;
  records.reserve(batch.size());
  for (Entry& e : batch) records.push_back(std::move(e.record));
  bool try_database;
  {
    absl::MutexLock lock(&mu_);
    try_database = stats_.database_up || absl::Now() >= retry_at_;
  }
  bool stored = try_database && AppendToDatabase(records).ok();
  if (!stored) {
    absl::Status status;
    if (spill_ == nullptr) {
      absl::StatusOr<std::unique_ptr<SpillFile>> spill = SpillFile::Open(options_.spill_path);
      if (spill.ok()) {
        spill_ = *std::move(spill);
      } else {
        status = spill.status();
      }
    }
    if (spill_ != nullptr) status = spill_->Append(records);
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      stats_.records_spilled += static_cast<int64_t>(records.size());
      stats_.spilled_pending += static_cast<int64_t>(records.size());
    } else {
      ++stats_.write_errors;
      stats_.records_dropped += static_cast<int64_t>(records.size());
      Log(absl::StrCat("dropping ", records.size(), " records: ", status.message()));
    }
  }
  for (Entry& e : batch) {
    if (e.on_stored) e.on_stored();
  }
}

void UsageLedger::WriteBack() {
  int64_t offset = write_back_offset_;
  int64_t corrupt = 0;
  absl::StatusOr<std::vector<UsageRecord>> records =
      spill_->Read(&offset, options_.max_batch_records, &corrupt);
  if (!records.ok()) {
    Log(absl::StrCat("cannot write back: ", records.status().message()));
    absl::MutexLock lock(&mu_);
    ++stats_.write_errors;
    retry_at_ = absl::Now() + options_.max_retry;
    stats_.database_up = false;
    return;
  }
  if (!AppendToDatabase(*records).ok()) return;
  write_back_offset_ = offset;
  written_back_lines_ += static_cast<int64_t>(records->size()) + corrupt;
  absl::Status cleared;
  if (write_back_offset_ >= spill_->size_bytes()) {
    cleared = spill_->Clear();
    if (cleared.ok()) {
      write_back_offset_ = 0;
      written_back_lines_ = 0;
    } else {
      Log(std::string(cleared.message()));
    }
  }
  absl::MutexLock lock(&mu_);
  stats_.corrupt_spill_lines += corrupt;
  stats_.spilled_pending = spill_->num_lines() - written_back_lines_;
  if (!cleared.ok()) ++stats_.write_errors;
}

void UsageLedger::Loop() {
  for (;;) {
    std::vector<Entry> batch;
    bool write_back;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || !queue_.empty() || WriteBackDue();
      };
      if (stats_.spilled_pending > 0 && !stats_.database_up) {
        mu_.AwaitWithDeadline(absl::Condition(&ready), retry_at_);
      } else {
        mu_.Await(absl::Condition(&ready));
      }
      const size_t n = std::min(queue_.size(), static_cast<size_t>(options_.max_batch_records));
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      stats_.queue_depth = static_cast<int64_t>(queue_.size());
      if (batch.empty() && stop_) return;  // a spill file left over is written back next run
      in_flight_ += batch.empty() ? 0 : 1;
    }
    if (!batch.empty()) Store(batch);
    {
      absl::MutexLock lock(&mu_);
      in_flight_ -= batch.empty() ? 0 : 1;
      // One batch of write-back per new batch, so a long spill file does not
      // hold up new records.
      write_back = WriteBackDue() && !stop_;
    }
    if (write_back) WriteBack();
  }
}

}  // namespace phi3::ledger
