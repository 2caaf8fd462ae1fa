// LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning: Training BERT in 76
// minutes", Algorithm 2): Adam's bias-corrected direction plus weight decay, rescaled per layer
// (here: per parameter tensor) by the trust ratio ||p|| / ||update|| so every layer moves by a
// step proportional to its own norm. phi is the identity, optionally clamped (DeepSpeed's
// max_coeff / min_coeff).
#include <cmath>

#include <ATen/core/grad_mode.h>

#include "convforever/optim/optimizers.h"

namespace cf::optim {

Lamb::Lamb(OptimizerOptions options, std::vector<ParamGroup> groups)
    : Optimizer(std::move(options), std::move(groups), {"exp_avg", "exp_avg_sq"}) {}

void Lamb::Step(double lr) {
  at::NoGradGuard no_grad;
  const double b1 = options_.beta1, b2 = options_.beta2;
  for (size_t g = 0; g < groups_.size(); ++g) {
    Batch b = Gather(g, {true, true});
    if (b.params.empty()) continue;
    const double group_lr = lr * groups_[g].lr_scale;
    const double wd = groups_[g].weight_decay;
    std::vector<at::Tensor>& m = b.slots[0];
    std::vector<at::Tensor>& v = b.slots[1];
    at::_foreach_mul_(m, b1);
    at::_foreach_add_(m, b.grads, 1.0 - b1);
    at::_foreach_mul_(v, b2);
    at::_foreach_addcmul_(v, b.grads, b.grads, 1.0 - b2);
    std::vector<at::Scalar> inv_bc1, inv_bc2;
    for (int64_t t : b.steps) {
      inv_bc1.emplace_back(1.0 / (1.0 - std::pow(b1, static_cast<double>(t))));
      inv_bc2.emplace_back(1.0 / (1.0 - std::pow(b2, static_cast<double>(t))));
    }
    // r = m_hat / (sqrt(v_hat) + eps); u = r + wd * p
    std::vector<at::Tensor> denom = at::_foreach_mul(v, inv_bc2);
    at::_foreach_sqrt_(denom);
    at::_foreach_add_(denom, options_.eps);
    std::vector<at::Tensor> u = at::_foreach_mul(m, inv_bc1);
    at::_foreach_div_(u, denom);
    if (wd != 0) at::_foreach_add_(u, b.params, wd);
    const std::vector<at::Tensor> p_norm = at::_foreach_norm(b.params, 2);
    const std::vector<at::Tensor> u_norm = at::_foreach_norm(u, 2);
    for (size_t i = 0; i < u.size(); ++i) {
      // Stays on the device: no host sync per tensor.
      at::Tensor trust = at::where(at::logical_and(p_norm[i] > 0, u_norm[i] > 0),
                                   p_norm[i] / u_norm[i], at::ones_like(p_norm[i]));
      if (options_.max_trust > 0) trust = trust.clamp(options_.min_trust, options_.max_trust);
      else if (options_.min_trust > 0) trust = trust.clamp_min(options_.min_trust);
      u[i].mul_(trust * (-group_lr));
    }
    at::_foreach_add_(b.params, u);
  }
}

}  // namespace cf::optim
