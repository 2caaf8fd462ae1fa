// Reads where this process sits in a distributed job from the environment its launcher set.
//
// Supported launchers (variables in /work/shared/FORMATS.md, "Launch environments"):
//   torchrun  RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
//             TORCHELASTIC_RESTART_COUNT, TORCHELASTIC_USE_AGENT_STORE (=True: the agent already
//             serves a TCPStore at MASTER_ADDR:MASTER_PORT, so every rank connects as a client);
//   DeepSpeed RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_SIZE, MASTER_ADDR, MASTER_PORT (+CROSS_*);
//   SLURM     SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE / SLURM_NNODES,
//             SLURM_NODELIST (compressed; its first host is the master unless MASTER_ADDR is set);
//   Open MPI  OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK/LOCAL_SIZE.
// With none of them the process is a single rank (source "single"). Explicit overrides (the
// trainer's flags) win over the environment. Every malformed variable is an error naming it.
// Pure functions of their inputs; thread-safe.
#ifndef CONVFOREVER_DISTRIBUTED_LAUNCH_ENV_H_
#define CONVFOREVER_DISTRIBUTED_LAUNCH_ENV_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cf::distributed {

struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool use_agent_store = false;  // torchrun's agent serves the store: connect as a client
  int restart_count = 0;         // torchrun restarts; names the agent store's key prefix
  std::string source = "single";  // torchrun|slurm|deepspeed|openmpi|flags|single
};

// Explicit settings (flags); each set field overrides the environment.
struct LaunchOverrides {
  std::optional<int> rank, world_size, local_rank, local_world_size, master_port;
  std::optional<std::string> master_addr;
};

// Looks a variable up; std::nullopt when unset. The default reads the process environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

absl::StatusOr<LaunchEnv> ReadLaunchEnv(const LaunchOverrides& flags);
absl::StatusOr<LaunchEnv> ReadLaunchEnv(const LaunchOverrides& flags, const EnvLookup& env);

// Expands a SLURM host list ("gnode[10,20-22],login1", zero padding kept: "n[01-03]").
absl::StatusOr<std::vector<std::string>> ExpandSlurmNodeList(const std::string& nodelist);

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_LAUNCH_ENV_H_
