// A sweep directory (`tools/cf sweep FILE.csv --out DIR`): DIR/results.csv (one row per run:
// row,name,status,<input columns>,params,gmacs_per_image,train_flops,final_top1,...) and
// DIR/runs/<name>/ run directories. Loads the table and the run dirs of the DONE rows, and builds
// the scaling plots: held-out loss and error (1 - top-1) against parameters and training FLOPs,
// log-log, each with a fitted saturating power law (power_law_fit.h). Thread-compatible.
#ifndef CONVFOREVER_REPORT_SWEEP_H_
#define CONVFOREVER_REPORT_SWEEP_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/report/csv.h"
#include "convforever/report/plot.h"
#include "convforever/report/power_law_fit.h"
#include "convforever/report/run_dir.h"

namespace cf::report {

// True when `dir` holds results.csv and a runs/ folder.
bool IsSweepDir(const std::string& dir);

struct SweepData {
  std::string dir;
  CsvTable results;
  std::vector<RunData> runs;        // the DONE rows' run dirs that could be loaded, in row order
  std::vector<std::string> notes;   // DONE rows whose run dir could not be loaded, and why
};

// INVALID_ARGUMENT naming results.csv (and line, column) when it is malformed or lacks the
// name/status columns.
absl::StatusOr<SweepData> LoadSweepDir(const std::string& dir);

struct ScalingPlot {
  Plot plot;
  std::string x_name, y_name;
  int points = 0;
  std::optional<PowerLawFit> fit;
  std::string fit_status;  // the formula, or why there is no fit
};

// loss_vs_params, loss_vs_flops, error_vs_params, error_vs_flops. A row counts when its status is
// DONE and both numbers are present; the CSV's numbers are checked (errors name file, line, column).
absl::StatusOr<std::vector<ScalingPlot>> ScalingPlots(const SweepData& sweep);

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_SWEEP_H_
