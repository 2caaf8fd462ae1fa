// One optimizer step of a training run, after the backward passes of its micro-batches, for
// every way the run keeps its ranks in step. In order:
//
//   1. finish the gradient sync (plain data parallel and PowerSGD: the hooks' last all-reduce);
//   2. unscale the fp16 gradients, finding inf/NaN (a non-finite loss skips without looking);
//   3. agree on skipping: one rank's non-finite loss or gradient skips the step on every rank
//      (DiLoCo's inner steps are each rank's own: it skips alone, with no collective);
//   4. reduce (ZeRO only: stage 1 all-reduce, stage 2 reduce-scatter) and clip by the total
//      gradient norm (under ZeRO the global norm over the shards, the same on every rank), a
//      non-finite norm skipping the step too;
//   5. step with the given lr (ZeRO: this rank's shard, then all-gather the parameters);
//   6. drop the gradients, so the next step's backward starts from nothing (unsharded: the
//      optimizer's ZeroGrad; ZeRO: every parameter's .grad reset here, the ZeroOptimizer having
//      no ZeroGrad, and on a skipped step no reduction having released them);
//   7. update the loss scale; run DiLoCo's after-step hook (the outer step every H steps, and
//      after the run's last step every fragment's, so all ranks end with the same weights);
//      update the EMA when the step was taken.
//
// The unsharded and the ZeRO paths differ only in steps 4-6 (ReduceAndClip, StepParameters,
// DropGradients, each an `if (zero)` of a few lines). The unscale before the ZeRO reduction is
// exact (it is linear), and lets every rank agree on skipping before any gradient collective, so
// all ranks skip or reduce together.
//
// References its parts (owned by RunSetup), which must outlive it. Not thread-safe.
#ifndef CONVFOREVER_TRAIN_OPTIMIZER_STEP_H_
#define CONVFOREVER_TRAIN_OPTIMIZER_STEP_H_

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/data_parallel.h"
#include "convforever/distributed/diloco.h"
#include "convforever/distributed/zero_optimizer.h"
#include "convforever/optim/ema.h"
#include "convforever/optim/loss_scaler.h"
#include "convforever/optim/optimizer.h"

namespace cf::train {

// Exactly one of `optimizer` and `zero` is set; every other pointer may be null.
struct OptimizerStepParts {
  std::vector<at::Tensor> params;              // every trainable parameter
  optim::Optimizer* optimizer = nullptr;       // unsharded: steps every parameter
  distributed::ZeroOptimizer* zero = nullptr;  // ZeRO: reduces, clips and steps this rank's shard
  distributed::Communicator* comm = nullptr;   // null with one rank
  distributed::DataParallel* dp = nullptr;     // the hooks of plain data parallel / PowerSGD
  distributed::DiLoCo* diloco = nullptr;       // --sync=diloco with several ranks
  optim::LossScaler* scaler = nullptr;         // fp16
  optim::Ema* ema = nullptr;                   // --ema_decay > 0
  double max_grad_norm = 0;                    // --gradient_clipping; <= 0 only measures
  int64_t total_steps = 0;                     // DiLoCo synchronises everything after the last
};

struct StepOutcome {
  bool stepped = false;    // false: skipped (non-finite loss, gradient or norm) on every rank
  double grad_norm = 0;    // before clipping; 0 when skipped before the norm was taken
};

class OptimizerStep {
 public:
  explicit OptimizerStep(OptimizerStepParts parts);

  // Steps 1-7 above for optimizer step `step` (0-based) with learning rate `lr`. `loss_finite`:
  // whether this rank's loss was finite in every micro-batch.
  absl::StatusOr<StepOutcome> Apply(int64_t step, double lr, bool loss_finite);
  // The run's length changed (a --time_budget plan): DiLoCo's final synchronisation moves with it.
  void set_total_steps(int64_t total_steps) { p_.total_steps = total_steps; }

 private:
  absl::StatusOr<double> ReduceAndClip();
  absl::Status StepParameters(double lr);
  void DropGradients();
  absl::Status AfterStep(int64_t steps_done);

  OptimizerStepParts p_;
};

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_OPTIMIZER_STEP_H_
