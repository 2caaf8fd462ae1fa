// DIR/results.csv and the table printed at the end of a sweep.
//
// results.csv: header `row,name,status,<the input table's columns>,params,gmacs_per_image,
// train_flops,final_top1,final_top5,final_loss,best_top1,steps,wall_seconds,images_per_sec,
// gpu_hours`, one line per table row in table order. The input columns hold the values the row ran
// with (after --scale_column). The figures come from the run's summary.json when it has one
// (a run stopped by a signal has partial figures; `status` says whether they are final) and are
// empty otherwise; top-1/top-5 are fractions; gpu_hours = wall_seconds x ranks / 3600, ranks being
// summary.json's world_size (CPU processes count as devices). Non-finite values are written as
// the summary has them ("NaN"). WriteResultsCsv() replaces the file atomically, so a reader (or
// a kill -9) never sees half a table.
#ifndef CONVFOREVER_SWEEP_RESULTS_H_
#define CONVFOREVER_SWEEP_RESULTS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "convforever/sweep/run_status.h"

namespace cf::sweep {

struct ResultRow {
  size_t row = 0;
  std::string name;
  RowStatus status = RowStatus::kPending;
  std::vector<std::string> input_values;
  std::optional<nlohmann::json> summary;
  int ranks = 1;  // used when the summary has no world_size
};

// The figure columns after the input's own, in order.
const std::vector<std::string>& ResultFigureColumns();

std::string FormatResultsCsv(const std::vector<std::string>& input_header,
                             const std::vector<ResultRow>& rows);

absl::Status WriteResultsCsv(const std::string& path, const std::vector<std::string>& input_header,
                             const std::vector<ResultRow>& rows);

// A short fixed-width table: row, name, status, top-1, best top-1, steps, wall time, GPU-hours.
std::string FormatResultsTable(const std::vector<ResultRow>& rows);

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_RESULTS_H_
