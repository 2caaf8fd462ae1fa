// Starting a trainer (or the launcher) for one row so that it dies with the sweep.
//
// StartChild() forks and, in the child: puts it in a process group of its own (a terminal's
// Ctrl-C reaches only the sweep, which forwards one signal, instead of every trainer getting a
// second one from the sweep and stopping without its checkpoint); asks the kernel for SIGTERM when
// the parent dies (PR_SET_PDEATHSIG: the trainer checkpoints and exits) and then checks getppid()
// to close the race with a parent that died before that call; restores the default signal
// dispositions and an empty signal mask (the sweep blocks SIGINT/SIGTERM/SIGCHLD to wait for them);
// reads /dev/null and appends stdout+stderr to `log_path`; and execs argv[0]. `keep_fd` (or -1)
// is a descriptor the child keeps open (the run directory's lock). Call only from the thread that
// will wait for the child: the death signal follows the forking thread.
#ifndef CONVFOREVER_SWEEP_CHILD_PROCESS_H_
#define CONVFOREVER_SWEEP_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cf::sweep {

absl::StatusOr<pid_t> StartChild(const std::vector<std::string>& argv, const std::string& log_path,
                                 int keep_fd);

// Runs argv to completion with stdin on /dev/null and returns what it printed on stdout and
// stderr and its exit code (128 + signal when killed). For short queries of the trainer
// (--helpxml, --estimate); errors only when it cannot be started.
struct Captured {
  std::string out;
  std::string err;
  int exit_code = 0;
};
absl::StatusOr<Captured> RunAndCapture(const std::vector<std::string>& argv);

}  // namespace cf::sweep

#endif  // CONVFOREVER_SWEEP_CHILD_PROCESS_H_
