// The two modes that run nothing: --dry_run prints the plan, --slurm writes OUT/sweep.sbatch.
//
// PrintPlan() writes one block per row: row, name, status (DONE, or PENDING with the checkpoint it
// would resume from), the full command line and, for rows to run, the trainer's cost estimate
// (`train --estimate --format=json` with the row's flags and SweepOptions::estimate_flags:
// GPU-hours, dollars, memory per GPU), then the totals. WriteSlurmScript() writes the job array for the
// rows not DONE (slurm_script.h) and prints how to submit it; with every row DONE it writes
// nothing and says so. Both read the run directories only.
#ifndef CONVFOREVER_SWEEP_PLAN_REPORT_H_
#define CONVFOREVER_SWEEP_PLAN_REPORT_H_

#include <cstdio>

#include "absl/status/status.h"
#include "convforever/sweep/plan.h"

namespace cf::sweep {

void PrintPlan(const SweepOptions& options, const SweepPlan& plan, std::FILE* out);

absl::Status WriteSlurmScript(const SweepOptions& options, const SweepPlan& plan, std::FILE* out);

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_PLAN_REPORT_H_
