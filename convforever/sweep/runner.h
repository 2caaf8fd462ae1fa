// Runs a sweep plan: every row not DONE, `parallel` at a time, each as a child process that dies
// with the sweep (child_process.h).
//
// Contract:
// - OUT/.sweep.lock (flock) is held for the whole sweep; a second sweep on OUT fails at once with
//   an error naming the lock and its holder.
// - A row is DONE when its summary.json says completed: true; such a row is never started (the
//   check is repeated right before a start). Other rows run `train ... --resume=auto`: a row with
//   a checkpoint resumes, one without starts from scratch. Each row's output is appended to
//   RUN_DIR/train.log after a "==== sweep:" line holding the command.
// - A trainer holds RUN_DIR/.train.lock (inherited from the sweep) while it lives; a row whose lock
//   is held (a trainer orphaned by a killed sweep, still writing its last checkpoint) waits.
// - A row that exits non-zero, or exits 0 without a completed summary, is FAILED: the tail of its
//   log is printed and the other rows go on.
// - SIGINT/SIGTERM: no new row starts, the signal is forwarded to every running child (trainers
//   checkpoint and exit; a second signal is forwarded too and stops them at once), the sweep waits
//   for them and returns 128 + signal. Stopped rows are PENDING and resume on the next run.
// - OUT/results.csv (results.h) is rewritten atomically whenever a row starts or ends.
// Returns the exit code: 0 when every row is DONE, 1 when some row FAILED (they are named), 128 +
// signal when stopped; an error for what stops the sweep as a whole (lock, I/O). Blocks SIGINT,
// SIGTERM and SIGCHLD in the calling thread for its duration; single-threaded.
#ifndef CONVFOREVER_SWEEP_RUNNER_H_
#define CONVFOREVER_SWEEP_RUNNER_H_

#include "absl/status/statusor.h"
#include "convforever/sweep/plan.h"

namespace cf::sweep {

absl::StatusOr<int> RunSweep(const SweepOptions& options, const SweepPlan& plan);

// The last `max_lines` lines a row's latest start wrote to its train.log.
std::string LatestLogTail(const std::string& log_path, int max_lines);

// The line written into train.log before each start of a row.
inline constexpr char kLogStartMarker[] = "==== sweep: start ";

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_RUNNER_H_
