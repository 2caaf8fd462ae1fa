// Starts the ranks of a data-parallel job on this machine the way torchrun does, for images that
// have no shell to run tools/launch with: N copies of a program, each with RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK=0, MASTER_ADDR=127.0.0.1 and MASTER_PORT (a free port
// unless given). Every line a rank writes (stdout and stderr) is written to our stdout prefixed
// "[rank K] ". When one rank fails the others get SIGTERM (and SIGKILL after a grace period) and
// the launch returns the failed rank's exit code (128 + signal for a rank killed by a signal);
// SIGINT/SIGTERM to the launcher are passed to every rank. Children die with the launcher
// (PR_SET_PDEATHSIG). Not thread-safe: one launch per process at a time.
#ifndef CONVFOREVER_CONTAINERS_ENTRYPOINT_LOCAL_LAUNCH_H_
#define CONVFOREVER_CONTAINERS_ENTRYPOINT_LOCAL_LAUNCH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cf::entrypoint {

struct LaunchOptions {
  int nprocs = 1;
  int master_port = 0;         // 0: a free port on 127.0.0.1
  int grace_seconds = 10;      // SIGTERM -> SIGKILL for the remaining ranks after a failure
  std::string program;         // absolute path
  std::vector<std::string> args;
};

// Parses the launcher's own options: -n N | --nproc_per_node N | --nprocs N, --master_port P
// (also as --opt=value). Errors name the option.
absl::Status ParseLaunchArgs(const std::vector<std::string>& launch_args, LaunchOptions* options);

// Runs the ranks to completion; returns the job's exit code (0 when every rank exited 0).
absl::StatusOr<int> RunLocalLaunch(const LaunchOptions& options);

}  // namespace cf::entrypoint

#endif  // CONVFOREVER_CONTAINERS_ENTRYPOINT_LOCAL_LAUNCH_H_
