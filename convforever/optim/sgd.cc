// SGD with momentum and Nesterov momentum (Sutskever et al. 2013), matching
// torch.optim.SGD(foreach=True): L2 weight decay is added to the gradient; the momentum buffer
// starts as a copy of the first gradient. Unlike PyTorch, the gradients are never modified.
#include "convforever/optim/optimizers.h"

#include <ATen/core/grad_mode.h>

namespace cf::optim {

Sgd::Sgd(OptimizerOptions options, std::vector<ParamGroup> groups)
    : Optimizer(std::move(options), std::move(groups), {"momentum_buffer"}) {}

void Sgd::Step(double lr) {
  at::NoGradGuard no_grad;
  const double momentum = options_.momentum;
  for (size_t g = 0; g < groups_.size(); ++g) {
    Batch b = Gather(g, {false});
    if (b.params.empty()) continue;
    const double group_lr = lr * groups_[g].lr_scale;
    const double wd = groups_[g].weight_decay;
    std::vector<at::Tensor> grads = wd != 0 ? at::_foreach_add(b.grads, b.params, wd) : b.grads;
    if (momentum != 0) {
      std::vector<at::Tensor>& bufs = b.slots[0];
      std::vector<at::Tensor> old_bufs, old_grads;
      for (size_t i = 0; i < bufs.size(); ++i) {
        if (bufs[i].defined()) {
          old_bufs.push_back(bufs[i]);
          old_grads.push_back(grads[i]);
        } else {
          bufs[i] = grads[i].clone(at::MemoryFormat::Contiguous);
        }
      }
      if (!old_bufs.empty()) {
        at::_foreach_mul_(old_bufs, momentum);
        at::_foreach_add_(old_bufs, old_grads, 1.0 - options_.dampening);
      }
      Scatter(g, b, 0);
      grads = options_.nesterov ? at::_foreach_add(grads, bufs, momentum) : bufs;
    }
    at::_foreach_add_(b.params, grads, -group_lr);
  }
}

}  // namespace cf::optim
