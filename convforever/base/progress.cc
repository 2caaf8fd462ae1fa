#include "convforever/base/progress.h"

#include <unistd.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace cf::base {

ProgressLine::ProgressLine(ProgressOptions options)
    : options_(std::move(options)),
      terminal_(options_.is_terminal >= 0 ? options_.is_terminal == 1
                                          : ::isatty(::fileno(options_.out)) == 1),
      start_(Clock::now()),
      last_print_(start_),
      last_sample_time_(start_) {}

ProgressLine::~ProgressLine() {
  if (printed_ && !finished_ && terminal_) std::fputc('\n', options_.out);
}

std::string ProgressLine::FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

std::string ProgressLine::Render(int64_t done, double rate, absl::string_view extra) const {
  std::string line = options_.label.empty() ? "" : absl::StrCat(options_.label, " ");
  if (options_.total > 0) {
    absl::StrAppendFormat(&line, "%d/%d %.1f%%", done, options_.total,
                          100.0 * static_cast<double>(done) / static_cast<double>(options_.total));
  } else {
    absl::StrAppend(&line, done);
  }
  absl::StrAppendFormat(&line, " | %.1f %s/s", rate, options_.unit);
  if (options_.total > 0 && rate > 0) {
    absl::StrAppend(&line, " | ETA ",
                    FormatDuration(static_cast<double>(options_.total - done) / rate));
  }
  if (!extra.empty()) absl::StrAppend(&line, " | ", extra);
  return line;
}

void ProgressLine::Update(int64_t done, absl::string_view extra) {
  done_ = done;
  const Clock::time_point now = Clock::now();
  const double dt = std::chrono::duration<double>(now - last_sample_time_).count();
  if (dt >= 0.5) {
    const double instant = static_cast<double>(done - last_sample_done_) / dt;
    // Seed with the first measurement, then smooth so one slow batch does not swing the ETA.
    rate_ = rate_ == 0.0 ? instant : 0.7 * rate_ + 0.3 * instant;
    last_sample_time_ = now;
    last_sample_done_ = done;
  }
  const auto interval = terminal_ ? options_.min_interval : options_.plain_interval;
  if (now - last_print_ < interval) return;
  last_print_ = now;
  Print(Render(done, rate_, extra), /*final_line=*/false);
}

void ProgressLine::Finish(absl::string_view extra) {
  if (finished_) return;
  finished_ = true;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double average = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  Print(absl::StrCat(Render(done_, average, extra), " | ", FormatDuration(elapsed), " total"),
        /*final_line=*/true);
}

void ProgressLine::Print(const std::string& line, bool final_line) {
  if (terminal_) {
    // \x1b[K clears what a longer previous line left behind.
    std::fprintf(options_.out, "\r%s\x1b[K%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(options_.out, "%s\n", line.c_str());
  }
  std::fflush(options_.out);
  printed_ = true;
}

}  // namespace cf::base
