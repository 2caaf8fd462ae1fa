// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_) and gradient-accumulation
// helpers. Parameters without a gradient are ignored. All gradients must live on one device; the
// norm is computed with one _foreach_norm over the list plus one norm of the stacked results, and
// read back once (one host sync). Not thread-safe with respect to concurrent writers of the grads.
#ifndef CONVFOREVER_OPTIM_CLIP_H_
#define CONVFOREVER_OPTIM_CLIP_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "convforever/optim/param_groups.h"

namespace cf::optim {

// Scales the gradients by min(1, max_norm / (total + 1e-6)) and returns the pre-clip total L2
// norm (inf/NaN propagate: the caller decides to skip). max_norm <= 0 only measures.
double ClipGradNorm(const std::vector<at::Tensor>& params, double max_norm);

// The total L2 norm of the gradients without changing them.
double GradNorm(const std::vector<at::Tensor>& params);

// Every parameter of the groups, in group order (for ClipGradNorm / the loss scaler).
std::vector<at::Tensor> AllParams(const std::vector<ParamGroup>& groups);

// Multiplies every gradient by `factor` (e.g. 1/accumulation_steps when losses were summed).
void ScaleGrads(const std::vector<at::Tensor>& params, double factor);

// Micro-step bookkeeping for gradient accumulation: micro steps 0..k-1 of each optimizer step.
struct Accumulation {
  int64_t steps = 1;  // micro batches per optimizer step (>= 1)
  // True on the last micro step of a window: the one that steps the optimizer (and the one on
  // which data-parallel code lets gradients synchronize).
  bool IsBoundary(int64_t micro_step) const { return (micro_step + 1) % steps == 0; }
  int64_t OptimizerStep(int64_t micro_step) const { return micro_step / steps; }
  double LossScale() const { return 1.0 / static_cast<double>(steps); }
};

}  // namespace cf::optim

#endif  // CONVFOREVER_OPTIM_CLIP_H_
