// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2): the
// update is the sign of an interpolation between momentum and gradient, so every coordinate
// moves by exactly lr (plus decoupled weight decay); the momentum tracks the gradient with b2.
#include "convforever/optim/optimizers.h"

#include <ATen/core/grad_mode.h>

namespace cf::optim {

Lion::Lion(OptimizerOptions options, std::vector<ParamGroup> groups)
    : Optimizer(std::move(options), std::move(groups), {"exp_avg"}) {}

void Lion::Step(double lr) {
  at::NoGradGuard no_grad;
  const double b1 = options_.beta1, b2 = options_.beta2;
  for (size_t g = 0; g < groups_.size(); ++g) {
    Batch b = Gather(g, {true});
    if (b.params.empty()) continue;
    const double group_lr = lr * groups_[g].lr_scale;
    const double wd = groups_[g].weight_decay;
    std::vector<at::Tensor>& m = b.slots[0];
    // c = b1*m + (1-b1)*g, then sign(c): 1.13 has no _foreach_sign, so sign_ runs per tensor.
    std::vector<at::Tensor> update = at::_foreach_mul(m, b1);
    at::_foreach_add_(update, b.grads, 1.0 - b1);
    for (at::Tensor& u : update) u.sign_();
    if (wd != 0) at::_foreach_mul_(b.params, 1.0 - group_lr * wd);
    at::_foreach_add_(b.params, update, -group_lr);
    at::_foreach_mul_(m, b2);
    at::_foreach_add_(m, b.grads, 1.0 - b2);
  }
}

}  // namespace cf::optim
