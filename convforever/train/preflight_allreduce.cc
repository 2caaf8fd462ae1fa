// The rank side of the preflight's allreduce check (preflight.h): one process of the job the
// preflight spawned (preflight_hosts.cc), reading torchrun's variables like the trainer
// (distributed::ReadLaunchEnv), joining a Gloo group through the project's Communicator, and
// timing all-reduces of a float32 tensor.
//
// Each round fills the tensor with rank + 1 and sums it over the ranks; every element must then be
// W (W + 1) / 2, or the rank fails naming the element. One warm-up round, then five timed; the
// slowest rank's time is the round's (a max all-reduce of the times). Rank 0 prints the median
// round as "preflight_allreduce: ..." with the bus bandwidth of a ring all-reduce,
// 2 (W - 1) / W x bytes / seconds (the figure nccl-tests report).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <ATen/ATen.h>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/launch_env.h"
#include "convforever/train/preflight.h"

namespace cf::train {
namespace {

absl::StatusOr<std::string> AllReduceRounds(double timeout_s, double megabytes) {
  absl::StatusOr<distributed::LaunchEnv> env = distributed::ReadLaunchEnv(distributed::LaunchOverrides{});
  if (!env.ok()) return env.status();
  distributed::CommOptions options;
  options.backend = "gloo";
  options.timeout = absl::Seconds(std::max(1.0, timeout_s));
  options.process_group_for_one_rank = true;  // a one-line hostfile still checks the engine
  absl::StatusOr<std::unique_ptr<distributed::Communicator>> comm = distributed::Communicator::Create(*env, options);
  if (!comm.ok()) return comm.status();
  distributed::Communicator& c = **comm;
  const int64_t n = std::max<int64_t>(1, static_cast<int64_t>(megabytes * (1 << 20) / 4));
  at::Tensor t = at::empty({n}, at::kFloat);
  const double w = c.world_size();
  const float expected = static_cast<float>(w * (w + 1) / 2);
  std::vector<double> times;
  for (int round = 0; round < 6; ++round) {
    t.fill_(static_cast<float>(c.rank() + 1));
    std::vector<at::Tensor> tensors = {t};
    const auto start = std::chrono::steady_clock::now();
    if (absl::Status s = c.AllReduceSum(tensors); !s.ok()) return s;
    std::vector<double> seconds = {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
    const at::Tensor wrong = (t != expected).nonzero();
    if (wrong.numel() > 0) {
      const int64_t i = wrong[0][0].item<int64_t>();
      return absl::DataLossError(absl::StrFormat("round %d: element %d is %g, want %g", round, i,
                                                 t[i].item<float>(), expected));
    }
    if (absl::Status s = c.AllReduceScalars(seconds, distributed::ReduceOp::kMax); !s.ok()) return s;
    if (round > 0) times.push_back(seconds[0]);
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double bytes = 4.0 * static_cast<double>(n);
  const double bus = 2 * (w - 1) / w * bytes / median;
  if (c.world_size() == 1) {
    return absl::StrFormat("preflight_allreduce: 1 rank (%s): the group forms and all-reduces; no peer to "
                           "measure a bandwidth against", c.backend_name());
  }
  return absl::StrFormat("preflight_allreduce: %d ranks (%s), %.3g MiB in %.3g ms, bus bandwidth %.3g GB/s",
                         c.world_size(), c.backend_name(), bytes / (1 << 20), 1e3 * median, bus / 1e9);
}

}  // namespace

int PreflightAllReduceMain(double timeout_s, double megabytes) {
  absl::StatusOr<std::string> line = AllReduceRounds(timeout_s, megabytes);
  if (!line.ok()) {
    std::fprintf(stderr, "preflight_allreduce: %s\n", line.status().ToString().c_str());
    return 1;
  }
  const char* rank = std::getenv("RANK");
  if (rank == nullptr || std::string(rank) == "0") std::printf("%s\n", line->c_str());
  return 0;
}

}  // namespace cf::train
