// The usage ledger's local fallback: records the database could not take,
// one JSON line each (usage_record.h), appended and fdatasync'd before they
// count as stored, read back later and then cleared.
//
// One process at a time: Open takes an exclusive flock on the file.
// Thread safety: none (the ledger's writer thread owns it).
#ifndef PHI3_SERVICE_LEDGER_SPILL_FILE_H_
#define PHI3_SERVICE_LEDGER_SPILL_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "service/ledger/usage_record.h"

namespace phi3::ledger {

class SpillFile {
 public:
  // Opens or creates `path`. FailedPrecondition when another process holds
  // it; Unavailable for I/O errors. A last line without its newline (an
  // append cut short by a crash, so never reported as stored) is cut off.
  static absl::StatusOr<std::unique_ptr<SpillFile>> Open(const std::string& path);
  ~SpillFile();

  // Appends and syncs. On error the file may hold part of the batch; the
  // caller treats the whole batch as not stored.
  absl::Status Append(absl::Span<const UsageRecord> records);

  // Up to `max_records` records from byte `*offset` on, advancing it past
  // them. Lines that do not parse are skipped and counted in *num_corrupt.
  absl::StatusOr<std::vector<UsageRecord>> Read(int64_t* offset, int max_records,
                                                int64_t* num_corrupt);
  // Empties the file once everything in it is stored elsewhere.
  absl::Status Clear();

  int64_t size_bytes() const { return size_bytes_; }
  int64_t num_lines() const { return num_lines_; }  // lines in the file
  const std::string& path() const { return path_; }

 private:
  SpillFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  absl::Status Errno(const char* what) const;

  const std::string path_;
  const int fd_;
  int64_t size_bytes_ = 0;
  int64_t num_lines_ = 0;
};

}  // namespace phi3::ledger

#endif  // PHI3_SERVICE_LEDGER_SPILL_FILE_H_
