// Test support: runs N copies of a helper binary as the ranks of one job on 127.0.0.1, with the
// torchrun variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT on
// a free port unless `port` is given) plus `extra_env` in each environment, and collects exit codes and stderr. Every process is killed
// at the deadline, or `grace_after_failure_s` after some rank failed, so a hang fails the test
// instead of blocking it.
#ifndef CONVFOREVER_DISTRIBUTED_MULTIPROCESS_HARNESS_H_
#define CONVFOREVER_DISTRIBUTED_MULTIPROCESS_HARNESS_H_

#include <string>
#include <utility>
#include <vector>

namespace cf::distributed::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int FreeLoopbackPort();

struct RankResult {
  int exit_code = -1;     // -1 when killed by a signal
  int signal = 0;
  bool killed_at_deadline = false;
  bool killed_after_peer_failure = false;  // still running grace_after_failure_s after a failure
  double seconds = 0;     // from start until this process ended
  std::string err;        // its stderr
};

// `binary` relative to the runfiles root (e.g. "convforever/distributed/dist_test_worker").
std::vector<RankResult> RunRanks(const std::string& binary, int world_size,
                                 const std::vector<std::string>& args, double deadline_s = 50,
                                 double grace_after_failure_s = 20, int port = 0,
                                 const std::vector<std::pair<std::string, std::string>>& extra_env = {});

// A temporary path under TEST_TMPDIR.
std::string TempPath(const std::string& name);

// Reads a float32 dump written by the worker.
std::vector<float> ReadFloats(const std::string& path);

}  // namespace cf::distributed::testing

#endif  // CONVFOREVER_DISTRIBUTED_MULTIPROCESS_HARNESS_H_
