// A one-line progress display: "<label> 1,234/10,000 12.3% | 456.7 it/s | ETA 0:19 | <extra>".
//
// On a terminal the line is redrawn in place (carriage return) at most every `min_interval`; when
// stderr is not a terminal (CI, log files, `tee`) it prints a plain line at most every
// `plain_interval` so logs stay short. The rate is an exponential moving average so it tracks the
// current speed, not the average since start. Not thread-safe: one thread owns the line.
#ifndef CONVFOREVER_BASE_PROGRESS_H_
#define CONVFOREVER_BASE_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/string_view.h"

namespace cf::base {

struct ProgressOptions {
  std::string label;
  std::string unit = "it";
  int64_t total = 0;  // 0 = unknown: no percentage, no ETA.
  std::chrono::milliseconds min_interval{200};
  std::chrono::milliseconds plain_interval{10000};
  std::FILE* out = stderr;
  // -1 = detect with isatty(fileno(out)); 0/1 force plain/terminal mode (tests).
  int is_terminal = -1;
};

class ProgressLine {
 public:
  explicit ProgressLine(ProgressOptions options);
  ~ProgressLine();

  // Reports that `done` units are finished in total (not an increment); `extra` is appended.
  void Update(int64_t done, absl::string_view extra = "");
  // Prints the final state and ends the line.
  void Finish(absl::string_view extra = "");

  double rate() const { return rate_; }  // units per second (smoothed)
  // A new total (a run whose length is planned after it started: --time_budget).
  void set_total(int64_t total) { options_.total = total; }

  // Formats seconds as H:MM:SS or M:SS. Exposed for tests.
  static std::string FormatDuration(double seconds);
  // Renders the line for the given state without printing it. Exposed for tests.
  std::string Render(int64_t done, double rate, absl::string_view extra) const;

 private:
  using Clock = std::chrono::steady_clock;
  void Print(const std::string& line, bool final_line);

  ProgressOptions options_;
  bool terminal_;
  Clock::time_point start_;
  Clock::time_point last_print_;
  Clock::time_point last_sample_time_;
  int64_t last_sample_done_ = 0;
  int64_t done_ = 0;
  double rate_ = 0.0;
  bool printed_ = false;
  bool finished_ = false;
};

}  // namespace cf::base

#endif  // CONVFOREVER_BASE_PROGRESS_H_
