// Reads a run's metrics.jsonl (written by //convforever/train's JsonlSink) into per-scalar series.
//
// Each line is one JSON object: `{"kind":"config","config":{flag:value}}`, `{"kind":"metrics",
// "step":N,"wall_time":T,<name>:<number>...}` or `{"kind":"system",...}` (ignored). A torn last
// line (the writer died mid-line) is skipped and counted; any other line that is not a JSON object
// is an error naming the file and line. A step logged twice (a resumed run re-logs the steps after
// its checkpoint) keeps the last value of each scalar. Non-finite values (the trainer writes them
// as the strings "NaN", "Infinity", "-Infinity") are counted and not plotted. Pure functions; thread-safe.
#ifndef CONVFOREVER_REPORT_METRICS_LOG_H_
#define CONVFOREVER_REPORT_METRICS_LOG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cf::report {

struct StepValue {
  int64_t step = 0;
  double value = 0;
};

struct MetricsLog {
  // The config records' flags, later records (a resumed run) overriding earlier ones.
  std::map<std::string, std::string> config;
  int config_records = 0;
  // Scalar name -> points sorted by step, one per step.
  std::map<std::string, std::vector<StepValue>> scalars;
  int metrics_records = 0;
  int torn_lines = 0;      // a torn last line, skipped (0 or 1)
  int replaced_values = 0; // scalar values overridden by a later record of the same step
  // Values the trainer wrote as "NaN"/"Infinity"/"-Infinity" (or null): not plotted, counted.
  int nonfinite_values = 0;
  std::string first_nonfinite;  // "train/loss at step 120"
  int64_t last_step = -1;  // highest step seen, -1 when none

  // The series of `name`, empty when it was never logged.
  const std::vector<StepValue>& Series(const std::string& name) const;
};

// Parses `text` as the contents of the file `path` (used in messages).
absl::StatusOr<MetricsLog> ParseMetricsLog(absl::string_view text, const std::string& path);

// Reads and parses `path`; NOT_FOUND naming it when it does not exist.
absl::StatusOr<MetricsLog> ReadMetricsLog(const std::string& path);

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_METRICS_LOG_H_
