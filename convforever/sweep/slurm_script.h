// --slurm: an sbatch job array for the rows not yet DONE, one array task per row.
//
// The array index is the row number; each task makes its run directory and runs the row's own
// command line (the same one a local sweep runs, --resume=auto included) from `workdir`, appending
// to the row's train.log. Scheduler output goes to OUT/runs/slurm-<job>_<task>.out. Resource lines
// (GPUs, time, partition) are the user's to add; the script says where. Pure function.
#ifndef CONVFOREVER_SWEEP_SLURM_SCRIPT_H_
#define CONVFOREVER_SWEEP_SLURM_SCRIPT_H_

#include <string>
#include <vector>

#include "convforever/sweep/plan.h"

namespace cf::sweep {

std::string SlurmScript(const SweepOptions& options, const std::vector<const PlannedRun*>& runs,
                        const std::string& workdir);

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_SLURM_SCRIPT_H_
