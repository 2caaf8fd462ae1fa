// Sweep table columns -> trainer flags.
//
// A column is either one of the original sweep tool's names (ColumnAliases(): approx_num_layers ->
// --depth, per_device_train_batch_size -> --micro_batch_size, learning_rate -> --lr, ...) or itself
// the name of a trainer flag (learned from the binary, see trainer_flags.h). Anything else is an
// error that names the unknown column(s) and lists the known ones. Values are checked against the
// flag's type and written the way gflags reads them: booleans True/False in any case (and 1/0) ->
// true/false; integers and floats must parse; the enumerated strings optimizer, lr_scheduler_type
// and precision are lower-cased (AdamW -> adamw); an empty cell sets nothing (the recipe's value
// stands). Errors name the table, the line and the column. Flags the sweep sets itself (run_dir,
// resume) and gflags' own (flagfile, help, ...) cannot be columns.
#ifndef CONVFOREVER_SWEEP_COLUMN_MAPPING_H_
#define CONVFOREVER_SWEEP_COLUMN_MAPPING_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convforever/sweep/csv.h"
#include "convforever/sweep/trainer_flags.h"

namespace cf::sweep {

// A trainer flag as it goes on the command line: --name=value.
struct FlagValue {
  std::string name;
  std::string value;

  std::string Arg() const { return "--" + name + "=" + value; }
  bool operator==(const FlagValue& o) const { return name == o.name && value == o.value; }
};

// The original tool's column names and the trainer flag each sets, in a fixed order.
const std::vector<std::pair<std::string, std::string>>& ColumnAliases();

// For each header column, the trainer flag it sets; an error lists every unknown column.
absl::StatusOr<std::vector<std::string>> MapColumns(const std::vector<std::string>& header,
                                                    const TrainerFlags& trainer_flags,
                                                    absl::string_view source);

// One row's flags, in column order (empty cells left out). `flag_for_column` is MapColumns()'s.
absl::StatusOr<std::vector<FlagValue>> RowFlags(const CsvTable& table, size_t row,
                                                const std::vector<std::string>& flag_for_column,
                                                const TrainerFlags& trainer_flags,
                                                absl::string_view source);

// A value as gflags reads a flag of `type` ("bool", "int32", "double", ...); `flag` names the
// flag for the error, which the caller prefixes with where the value came from.
absl::StatusOr<std::string> NormalizeValue(absl::string_view flag, absl::string_view type,
                                           absl::string_view value);

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_COLUMN_MAPPING_H_
