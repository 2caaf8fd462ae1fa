// --scale_column COL=FACTOR: multiplies a numeric column of the sweep table before its rows
// become flags, so a CPU can run the shape of a sweep meant for GPUs (approx_num_layers=0.1 turns
// depths 20..120 into 2..12).
//
// A column whose non-empty cells are all integers stays integral: each value becomes
// max(1, round(value x factor)). Any other numeric column is multiplied as a float. A cell that
// is not a number, an unknown column or a factor that is not a positive number is an error naming
// the table, the line and the column. Empty cells stay empty.
#ifndef CONVFOREVER_SWEEP_COLUMN_SCALE_H_
#define CONVFOREVER_SWEEP_COLUMN_SCALE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convforever/sweep/csv.h"

namespace cf::sweep {

struct ColumnScale {
  std::string column;
  double factor = 1.0;
};

// "COL=FACTOR[,COL=FACTOR...]"; an empty spec is no scaling.
absl::StatusOr<std::vector<ColumnScale>> ParseColumnScales(absl::string_view spec);

// Rewrites table->rows in place.
absl::Status ApplyColumnScale(const ColumnScale& scale, CsvTable* table, absl::string_view source);

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_COLUMN_SCALE_H_
