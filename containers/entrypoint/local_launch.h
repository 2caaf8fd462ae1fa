// Starts the ranks of a data-parallel job on this machine the way torchrun does, for images that
// have no shell to run tools/launch with: N copies of a program, each with RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR and MASTER_PORT. One node (default):
// MASTER_ADDR=127.0.0.1 and a free port. Several nodes (torchrun's static rendezvous, one
// container per node): --nnodes K --node_rank I --master_addr HOST --master_port P on every node;
// node I's ranks are I*N .. I*N+N-1 of K*N. Every line a rank writes (stdout and stderr) is written to our stdout prefixed
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
  int master_port = 0;         // 0: a free port on 127.0.0.1 (one node only)
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr;     // default 127.0.0.1 (one node only)
  int grace_seconds = 10;      // SIGTERM -> SIGKILL for the remaining ranks after a failure
  std::string program;         // absolute path
  std::vector<std::string> args;
};

// Parses the launcher's own options: -n N | --nproc_per_node N | --nprocs N, --master_port P,
// --nnodes K, --node_rank I, --master_addr HOST (also as --opt=value). Errors name the option;
// several nodes need all of --node_rank, --master_addr and --master_port.
absl::Status ParseLaunchArgs(const std::vector<std::string>& launch_args, LaunchOptions* options);

// Runs the ranks to completion; returns the job's exit code (0 when every rank exited 0).
absl::StatusOr<int> RunLocalLaunch(const LaunchOptions& options);

}  // namespace cf::entrypoint

#endif  // CONVFOREVER_CONTAINERS_ENTRYPOINT_LOCAL_LAUNCH_H_
