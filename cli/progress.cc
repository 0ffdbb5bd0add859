#include "cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace phi3::cli {
namespace {

std::string Bytes(int64_t n) {
  if (n >= (int64_t{1} << 30)) return absl::StrFormat("%.1f GiB", n / double(int64_t{1} << 30));
  if (n >= (int64_t{1} << 20)) return absl::StrFormat("%.0f MiB", n / double(1 << 20));
  return absl::StrFormat("%.0f KiB", n / 1024.0);
}

}  // namespace

Progress::Progress(std::string program, std::FILE* out, int terminal)
    : program_(std::move(program)),
      out_(out),
      terminal_(terminal >= 0 ? terminal != 0 : isatty(fileno(out)) == 1) {}

Progress::~Progress() { EndLine(); }

void Progress::EndLine() {
  absl::MutexLock lock(&mu_);
  EndLineLocked();
}

void Progress::EndLineLocked() {
  if (line_open_) std::fputc('\n', out_);
  line_open_ = false;
  std::fflush(out_);
}

ProgressCallback Progress::Callback() {
  return [this](std::string_view stage, int64_t done, int64_t total) {
    Update(absl::string_view(stage.data(), stage.size()), done, total);
  };
}

Progress::Stage& Progress::StageLocked(absl::string_view name, int64_t done, int64_t total) {
  auto it = std::find_if(stages_.begin(), stages_.end(),
                         [name](const Stage& s) { return s.name == name; });
  // A finished stage that starts over (a second load) is a new stage.
  if (it != stages_.end() && it->finished && done < total) {
    stages_.erase(it);
    it = stages_.end();
  }
  if (it == stages_.end()) {
    stages_.push_back({std::string(name), "", absl::Now()});
    it = stages_.end() - 1;
  }
  return *it;
}

void Progress::RedrawLocked() {
  std::string line;
  for (const Stage& s : stages_) {
    if (!s.finished) absl::StrAppend(&line, line.empty() ? "" : "; ", s.text);
  }
  // (A finished stage has cleared the line already.)
  if (!line.empty()) std::fprintf(out_, "\r\033[K%s: %s", program_.c_str(), line.c_str());
  line_open_ = !line.empty();
  std::fflush(out_);
}

void Progress::Update(absl::string_view stage_name, int64_t done, int64_t total) {
  absl::MutexLock lock(&mu_);
  Stage& stage = StageLocked(stage_name, done, total);
  const absl::Time now = absl::Now();
  ++stage.num_updates;
  stage.finished = done >= total;
  const int percent =
      total > 0 ? static_cast<int>(100 * std::clamp<int64_t>(done, 0, total) / total) : 100;
  stage.text = absl::StrFormat("%s %d%% (%s of %s)", stage.name, percent, Bytes(done),
                               Bytes(total));
  // A stage reported only once (done at once) has no duration worth printing.
  const std::string finished_line =
      !stage.finished ? ""
      : stage.num_updates > 1
          ? absl::StrFormat("%s: %s in %.1f s\n", program_, stage.text,
                            absl::ToDoubleSeconds(now - stage.start))
          : absl::StrFormat("%s: %s\n", program_, stage.text);
  if (terminal_) {
    if (stage.finished) {
      std::fputs("\r\033[K", out_);
      std::fputs(finished_line.c_str(), out_);
      line_open_ = false;
    } else if (now - last_draw_ < absl::Milliseconds(100)) {
      return;  // at most 10 redraws a second
    }
    last_draw_ = now;
    RedrawLocked();
    return;
  }
  const int quarter = stage.finished ? 4 : percent / 25;
  if (quarter == stage.last_quarter) return;
  stage.last_quarter = quarter;
  if (stage.finished) {
    std::fputs(finished_line.c_str(), out_);
  } else {
    std::fprintf(out_, "%s: %s\n", program_.c_str(), stage.text.c_str());
  }
  std::fflush(out_);
}

}  // namespace phi3::cli
