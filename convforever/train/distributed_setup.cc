#include "convforever/train/distributed_setup.h"

#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "convforever/base/status_macros.h"
#include "convforever/distributed/launch_env.h"
#include "convforever/train/diloco_state.h"
#include "glog/logging.h"

namespace cf::train {

absl::StatusOr<std::unique_ptr<distributed::Communicator>> JoinLaunchedJob(
    const TrainerOptions& options, c10::Device* device) {
  ASSIGN_OR_RETURN(distributed::LaunchEnv env, distributed::ReadLaunchEnv(distributed::LaunchOverrides{}));
  if (options.device == "cuda") *device = c10::Device(c10::kCUDA, env.local_rank);
  if (env.world_size <= 1) {
    if (options.zero_stage > 0) {
      LOG(INFO) << "--zero_stage=" << options.zero_stage
                << ": ZeRO shards optimizer state over several ranks; a single process has "
                   "nothing to shard and trains unsharded";
    }
    return std::unique_ptr<distributed::Communicator>();
  }
  distributed::CommOptions c;
  c.backend = options.dist_backend;
  c.cuda = device->is_cuda();
  c.timeout = absl::Seconds(options.dist_timeout_s);
  c.link.mbps = options.dist_link_mbps;
  c.link.latency_ms = options.dist_link_latency_ms;
  ASSIGN_OR_RETURN(std::unique_ptr<distributed::Communicator> comm,
                   distributed::Communicator::Create(env, c));
  if (c.link.enabled()) {
    LOG(INFO) << "emulated link: " << c.link.mbps << " Mbit/s, " << c.link.latency_ms
              << " ms per message step";
  }
  LOG(INFO) << "rank " << comm->rank() << " of " << comm->world_size() << " ("
            << comm->backend_name() << ", launched by " << env.source << ")";
  return comm;
}

absl::StatusOr<RankSync> SetUpRankSync(const TrainerOptions& options,
                                       distributed::Communicator* comm, models::Model& model) {
  RankSync sync;
  if (!comm) {
    if (options.sync == "diloco") LOG(INFO) << "--sync=diloco: one rank, nothing to synchronise";
    return sync;
  }
  const bool hooks = options.zero_stage == 0 && options.sync != "diloco";  // ddp, powersgd
  distributed::DataParallelOptions d;
  d.overlap = hooks;
  if (options.sync == "powersgd" && hooks) {
    distributed::PowerSgdOptions p;
    p.rank = options.powersgd_rank;
    p.start_iter = options.powersgd_start_iter;
    p.warm_start = options.powersgd_warm_start;
    p.min_compression_rate = options.powersgd_min_compression_rate;
    p.use_error_feedback = options.powersgd_error_feedback;
    p.seed = options.seed;
    sync.powersgd = std::make_shared<distributed::PowerSgd>(comm, p);
    d.reducer = sync.powersgd;
  }
  auto dp = std::make_unique<distributed::DataParallel>(
      comm, model.named_parameters(/*recurse=*/true).pairs(), d);
  RETURN_IF_ERROR(dp->BroadcastParameters(model));
  if (hooks) sync.dp = std::move(dp);
  if (sync.powersgd) {
    LOG(INFO) << "PowerSGD rank " << options.powersgd_rank << " from step "
              << options.powersgd_start_iter << ": " << sync.powersgd->compressed_tensors()
              << " gradients compressed (" << sync.powersgd->compressed_bytes_per_step()
              << " bytes of factors per step), " << sync.powersgd->uncompressed_tensors()
              << " all-reduced whole (" << sync.powersgd->uncompressed_bytes_per_step() << " bytes)";
  }
  if (options.sync == "diloco") {
    ASSIGN_OR_RETURN(sync.diloco, CreateDiLoCo(options, comm, model));
  }
  return sync;
}

absl::StatusOr<bool> AnyRank(distributed::Communicator* comm, bool local) {
  if (!comm) return local;
  std::vector<double> flag = {local ? 1.0 : 0.0};
  RETURN_IF_ERROR(comm->AllReduceScalars(flag, distributed::ReduceOp::kMax));
  return flag[0] > 0;
}

}  // namespace cf::train
