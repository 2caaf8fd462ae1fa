#include "convforever/train/optimizer_step.h"

#include <cmath>
#include <utility>

#include "convforever/base/status_macros.h"
#include "convforever/optim/clip.h"
#include "convforever/train/distributed_setup.h"

namespace cf::train {

OptimizerStep::OptimizerStep(OptimizerStepParts parts) : p_(std::move(parts)) {}

absl::StatusOr<StepOutcome> OptimizerStep::Apply(int64_t step, double lr, bool loss_finite) {
  if (p_.dp) RETURN_IF_ERROR(p_.dp->FinishGradientSync());  // .grad now holds the mean over ranks
  bool skip = !loss_finite;
  if (p_.scaler && loss_finite) skip = p_.scaler->Unscale(p_.params);
  if (!p_.diloco) {
    ASSIGN_OR_RETURN(skip, AnyRank(p_.comm, skip));
  }
  double norm = 0;
  if (!skip) {
    ASSIGN_OR_RETURN(norm, ReduceAndClip());
    skip = !std::isfinite(norm);
    if (!skip) RETURN_IF_ERROR(StepParameters(lr));
  }
  DropGradients();
  if (p_.scaler) p_.scaler->Update(skip);
  RETURN_IF_ERROR(AfterStep(step + 1));  // before the EMA: it averages the post-outer-step weights
  if (!skip && p_.ema) p_.ema->Update(step + 1);
  return StepOutcome{!skip, norm};
}

// The unsharded gradients are already the mean over ranks (or this rank's own, under DiLoCo).
absl::StatusOr<double> OptimizerStep::ReduceAndClip() {
  if (!p_.zero) return optim::ClipGradNorm(p_.params, p_.max_grad_norm);
  RETURN_IF_ERROR(p_.zero->ReduceGradients());
  return p_.zero->ClipGradNorm(p_.max_grad_norm);
}

absl::Status OptimizerStep::StepParameters(double lr) {
  if (p_.zero) return p_.zero->Step(lr);
  p_.optimizer->Step(lr);
  return absl::OkStatus();
}

void OptimizerStep::DropGradients() {
  if (!p_.zero) {
    p_.optimizer->ZeroGrad();
    return;
  }
  for (at::Tensor& p : p_.params) {
    if (p.grad().defined()) p.mutable_grad().reset();
  }
}

absl::Status OptimizerStep::AfterStep(int64_t steps_done) {
  if (!p_.diloco) return absl::OkStatus();
  RETURN_IF_ERROR(p_.diloco->AfterInnerStep(steps_done));
  if (steps_done == p_.total_steps) RETURN_IF_ERROR(p_.diloco->SyncAll(steps_done));
  return absl::OkStatus();
}

}  // namespace cf::train
