// One training run directory as the report sees it: metrics.jsonl (required), summary.json and
// lr_finder.csv/lr_finder.json (optional; see the formats in //convforever/train). What the report
// shows about a run comes from RunKeyFacts(), which prefers summary.json and falls back to the
// metrics log for a run without one (still running, killed, or from a trainer that predates it).
// Pure loading; thread-compatible.
#ifndef CONVFOREVER_REPORT_RUN_DIR_H_
#define CONVFOREVER_REPORT_RUN_DIR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/report/metrics_log.h"

namespace cf::report {

// summary.json's fields; a field missing from the file stays unset.
struct RunSummary {
  std::optional<bool> completed, stopped_by_signal;
  std::optional<std::string> model;
  std::optional<double> depth, params, image_size, gmacs_per_image, micro_batch_size,
      gradient_accumulation_steps, world_size, steps, total_steps, samples_seen, train_flops, wall_seconds,
      images_per_sec, best_top1, final_train_loss;
  std::optional<double> eval_loss, eval_top1, eval_top5, ema_loss, ema_top1, ema_top5;
};

struct LrFinderRow {
  double lr = 0, loss = 0, smoothed_loss = 0;
};

struct LrFinder {
  std::vector<LrFinderRow> rows;      // lr_finder.csv
  std::optional<double> suggested_lr;  // lr_finder.json, when present
  std::optional<bool> diverged;
};

struct RunData {
  std::string name;  // the directory's base name
  std::string dir;
  MetricsLog metrics;
  std::optional<RunSummary> summary;
  std::optional<LrFinder> lr_finder;
};

// Loads `dir`: a training run's directory, or an LR finder's (lr_finder.csv, no metrics.jsonl).
// NOT_FOUND naming `<dir>/metrics.jsonl` when it and lr_finder.csv are missing; INVALID_ARGUMENT naming
// the file (and line or field) for malformed input.
absl::StatusOr<RunData> LoadRunDir(const std::string& dir);

absl::StatusOr<RunSummary> ParseRunSummary(const std::string& text, const std::string& path);

// The facts shown in a run's header row, as (label, display text); "" when not known.
std::vector<std::pair<std::string, std::string>> RunKeyFacts(const RunData& run);

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_RUN_DIR_H_
