// The sweep plan: one run per table row, with its name, run directory and full command line.
//
// A row's trainer command is
//   TRAIN --flagfile=RECIPE [--threads=T --num_workers=1] ROW_FLAGS OVERRIDES
//         --run_dir=OUT/runs/NAME --resume=auto
// so the row wins over the recipe and the overrides (the trainer flags after `--`) win over the
// row. With --parallel N > 1, T = max(1, cores / (N x ranks)) and --num_workers=1 are added unless
// the row or the overrides set them. With a launcher (`--launch "-n 2"`) the command is
//   LAUNCHER LAUNCH_ARGS -- TRAIN ...
// The run's identity, hashed into its name (run_name.h), is the recipe's file name, the row's
// flags, the overrides and the launch arguments: what decides what the run trains (not the
// thread count the sweep picks). Overrides must be trainer flags written --name=value (or
// --name / --noname for booleans); --run_dir and --resume belong to the sweep.
#ifndef CONVFOREVER_SWEEP_PLAN_H_
#define CONVFOREVER_SWEEP_PLAN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/sweep/column_mapping.h"
#include "convforever/sweep/column_scale.h"
#include "convforever/sweep/csv.h"
#include "convforever/sweep/trainer_flags.h"

namespace cf::sweep {

struct SweepOptions {
  std::string csv_path;
  std::string recipe_flagfile;  // absolute path of the recipe's .flags file
  std::string train_binary;     // absolute path of //convforever/train:train
  std::string launcher;         // absolute path of convforever/distributed/launch.sh
  std::vector<std::string> launch_args;  // e.g. {"-n", "2"}; empty: no launcher
  std::string out_dir;          // the sweep directory
  int parallel = 1;             // rows at once
  int cores = 1;                // CPUs this process may use
  std::vector<ColumnScale> scales;
  std::vector<std::string> overrides;  // trainer flags for every row
  // --dry_run: flags for each row's `train --estimate` (e.g. --gpu=rtx4090 --samples=N)
  std::vector<std::string> estimate_flags;
};

struct PlannedRun {
  size_t row = 0;                        // 0-based data row
  int line = 0;                          // its line in the table
  std::string name;
  std::string run_dir;                   // OUT/runs/NAME
  std::vector<std::string> input_values; // the row's cells as run (after --scale_column)
  std::vector<FlagValue> row_flags;
  std::vector<std::string> command;      // argv, [0] is the program
};

struct SweepPlan {
  CsvTable table;  // after scaling
  int ranks = 1;   // processes per run (the launcher's -n)
  std::vector<PlannedRun> runs;
};

absl::StatusOr<SweepPlan> BuildPlan(const SweepOptions& options, const TrainerFlags& trainer_flags);

// Parses the trainer flags after `--`: each must name a trainer flag; values are typed like
// table cells. Returned in order.
absl::StatusOr<std::vector<FlagValue>> ParseOverrides(const std::vector<std::string>& args,
                                                      const TrainerFlags& trainer_flags);

// The number after -n / --nproc_per_node / --nprocs in launcher arguments, or 1.
int LaunchRanks(const std::vector<std::string>& launch_args);

// A command line for a shell or a log: each argument quoted when it needs it.
std::string ShellJoin(const std::vector<std::string>& argv);

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_PLAN_H_
