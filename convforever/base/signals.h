// Graceful stop on SIGINT/SIGTERM (Ctrl-C, `kill`, spot-instance preemption, SLURM's time limit).
//
// InstallStopHandlers() makes the first SIGINT or SIGTERM set a process-wide flag that long-running
// loops poll with StopRequested(): the trainer finishes its step, checkpoints and exits 0. A
// second signal means "now": the process exits at once with 128+signal, as a shell would report.
// The handler is async-signal-safe (it only stores an atomic and, on the second signal, calls
// _exit). StopRequested() is safe from any thread.
#ifndef CONVFOREVER_BASE_SIGNALS_H_
#define CONVFOREVER_BASE_SIGNALS_H_

namespace cf::base {

void InstallStopHandlers();
bool StopRequested();
// The signal that requested the stop (SIGINT, SIGTERM), or 0.
int StopSignal();
// Sets the flag as a signal would (for tests, and for a rank told by its peers to stop).
void RequestStop(int signal_number);
// Clears the flag (tests only).
void ResetStopForTest();

}  // namespace cf::base

#endif  // CONVFOREVER_BASE_SIGNALS_H_
