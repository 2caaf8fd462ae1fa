// How a training run joins its ranks and keeps them in step, before and during training.
//
// JoinLaunchedJob reads the launcher's environment (torchrun, SLURM, DeepSpeed, Open MPI) and
// returns the communicator; a plain single process gets none (null) and trains alone.
// SetUpRankSync then broadcasts rank 0's initial weights and returns how gradients travel:
//   plain data parallel (--zero_stage=0, --sync=ddp): a DataParallel whose autograd hooks
//       all-reduce the gradients;
//   PowerSGD (--sync=powersgd): the same, with a distributed::PowerSgd reducer;
//   ZeRO (--zero_stage=1|2): no DataParallel (the ZeroOptimizer, built by RunSetup, reduces);
//   DiLoCo (--sync=diloco): no DataParallel either (the inner steps are local) but a
//       distributed::DiLoCo whose theta_last starts as the broadcast weights.
// ZeRO and DiLoCo broadcast through a hook-less DataParallel that is then dropped, so no hook
// runs during backward. AnyRank is the one-flag collective every rank uses to take the same
// decision at the same step.
#ifndef CONVFOREVER_TRAIN_DISTRIBUTED_SETUP_H_
#define CONVFOREVER_TRAIN_DISTRIBUTED_SETUP_H_

#include <memory>

#include <c10/core/Device.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/data_parallel.h"
#include "convforever/distributed/diloco.h"
#include "convforever/distributed/powersgd.h"
#include "convforever/models/model.h"
#include "convforever/train/trainer.h"

namespace cf::train {

// Joins the launched job; null with one process (then --zero_stage is logged and ignored). With
// --device=cuda, sets `*device` to the local rank's GPU.
absl::StatusOr<std::unique_ptr<distributed::Communicator>> JoinLaunchedJob(
    const TrainerOptions& options, c10::Device* device);

// How this rank's gradients and weights stay in step with the others'; all null with one rank.
struct RankSync {
  std::unique_ptr<distributed::DataParallel> dp;      // plain data parallel and PowerSGD
  std::shared_ptr<distributed::PowerSgd> powersgd;    // dp's reducer under --sync=powersgd
  std::unique_ptr<distributed::DiLoCo> diloco;        // --sync=diloco
};

// Broadcasts rank 0's weights of `model` to every rank and builds the RankSync for the options.
// `comm` may be null (one rank: nothing to do). `comm` and `model` must outlive the result.
absl::StatusOr<RankSync> SetUpRankSync(const TrainerOptions& options,
                                       distributed::Communicator* comm, models::Model& model);

// True when `local` is true on any rank (a collective); without a communicator, `local` itself.
absl::StatusOr<bool> AnyRank(distributed::Communicator* comm, bool local);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_DISTRIBUTED_SETUP_H_
