#include "service/ledger/spill_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace phi3::ledger {
namespace {

constexpr size_t kReadChunkBytes = 1 << 16;

// pread until `n` bytes or end of file.
ssize_t ReadFully(int fd, char* buf, size_t n, off_t offset) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = pread(fd, buf + done, n - done, offset + static_cast<off_t>(done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

}  // namespace

absl::Status SpillFile::Errno(const char* what) const {
  return absl::UnavailableError(
      absl::StrCat("usage ledger spill file ", path_, ": ", what, ": ", std::strerror(errno)));
}

absl::StatusOr<std::unique_ptr<SpillFile>> SpillFile::Open(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("usage ledger spill file ", path, ": cannot open: ", std::strerror(errno)));
  }
  std::unique_ptr<SpillFile> file(new SpillFile(path, fd));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "usage ledger spill file ", path,
          " is in use by another process (give each server its own --usage-ledger-spill)"));
    }
    return file->Errno("cannot lock");
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return file->Errno("cannot stat");
  // Count lines and find where the last complete one ends.
  std::string buf(kReadChunkBytes, '\0');
  int64_t complete_end = 0;
  for (off_t at = 0; at < st.st_size;) {
    const ssize_t n = ReadFully(fd, buf.data(), buf.size(), at);
    if (n <= 0) return file->Errno("cannot read");
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == '\n') {
        ++file->num_lines_;
        complete_end = at + i + 1;
      }
    }
    at += n;
  }
  if (complete_end < st.st_size) {
    if (ftruncate(fd, complete_end) != 0 || fdatasync(fd) != 0) {
      return file->Errno("cannot cut off a torn last line");
    }
  }
  file->size_bytes_ = complete_end;
  return file;
}

SpillFile::~SpillFile() { close(fd_); }

absl::Status SpillFile::Append(absl::Span<const UsageRecord> records) {
  std::string data;
  for (const UsageRecord& r : records) absl::StrAppend(&data, ToJsonLine(r), "\n");
  // One write (O_APPEND) for the batch; a short write is continued.
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("cannot append");
    done += static_cast<size_t>(n);
  }
  if (fdatasync(fd_) != 0) return Errno("cannot sync");
  size_bytes_ += static_cast<int64_t>(data.size());
  num_lines_ += static_cast<int64_t>(records.size());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<UsageRecord>> SpillFile::Read(int64_t* offset, int max_records,
                                                         int64_t* num_corrupt) {
  std::vector<UsageRecord> records;
  std::string buf(kReadChunkBytes, '\0');
  // The file holds whole lines only (Open cut off a torn one), so every chunk
  // read from a line start holds at least one whole line unless a line is
  // longer than the buffer, which ToJsonLine never writes.
  while (static_cast<int>(records.size()) < max_records && *offset < size_bytes_) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(buf.size(), size_bytes_ - *offset));
    const ssize_t n = ReadFully(fd_, buf.data(), want, *offset);
    if (n <= 0) return Errno("cannot read");
    const absl::string_view chunk(buf.data(), static_cast<size_t>(n));
    size_t pos = 0;
    while (static_cast<int>(records.size()) < max_records) {
      const size_t newline = chunk.find('\n', pos);
      if (newline == absl::string_view::npos) break;
      absl::StatusOr<UsageRecord> r = FromJsonLine(chunk.substr(pos, newline - pos));
      if (r.ok()) {
        records.push_back(*std::move(r));
      } else {
        ++*num_corrupt;
      }
      pos = newline + 1;
    }
    if (pos == 0) {
      return absl::DataLossError(absl::StrCat("usage ledger spill file ", path_,
                                              ": a line longer than ", buf.size(), " bytes"));
    }
    *offset += static_cast<int64_t>(pos);
  }
  return records;
}

absl::Status SpillFile::Clear() {
  if (ftruncate(fd_, 0) != 0 || fdatasync(fd_) != 0) return Errno("cannot clear");
  size_bytes_ = 0;
  num_lines_ = 0;
  return absl::OkStatus();
}

}  // namespace phi3::ledger
