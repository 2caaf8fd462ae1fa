// AdamW (Loshchilov & Hutter 2019), matching torch.optim.AdamW(foreach=True, amsgrad=False).
#include <cmath>

#include <ATen/core/grad_mode.h>

#include "convforever/optim/fused_cpu.h"
#include "convforever/optim/optimizers.h"

namespace cf::optim {

AdamW::AdamW(OptimizerOptions options, std::vector<ParamGroup> groups)
    : Optimizer(std::move(options), std::move(groups), {"exp_avg", "exp_avg_sq"}) {}

void AdamW::Step(double lr) {
  at::NoGradGuard no_grad;
  for (size_t g = 0; g < groups_.size(); ++g) {
    Batch b = Gather(g, {true, true});
    if (b.params.empty()) continue;
    const double group_lr = lr * groups_[g].lr_scale;
    if (UseFused(b)) {
      FusedStep(b, group_lr, groups_[g].weight_decay);
    } else {
      ForeachStep(b, group_lr, groups_[g].weight_decay);
    }
  }
}

// One pass over p, g, m, v per element: the same float32 arithmetic, in the same order, as the
// foreach path below, but reading and writing each array once instead of once per op.
void AdamW::FusedStep(Batch& b, double lr, double wd) {
  const bool decoupled = options_.decoupled_weight_decay;
  const float b1 = options_.beta1, b2 = options_.beta2, eps = options_.eps;
  const float one_minus_b1 = 1.0 - options_.beta1, one_minus_b2 = 1.0 - options_.beta2;
  const float decay = decoupled ? 1.0 - lr * wd : 1.0f;
  const float l2 = decoupled ? 0.0f : static_cast<float>(wd);
  const size_t n = b.params.size();
  std::vector<float> step_size(n), bc2_sqrt(n);
  std::vector<float*> P(n), G(n), M(n), V(n);
  std::vector<int64_t> numels(n);
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(b.steps[i]);
    step_size[i] = -lr / (1.0 - std::pow(options_.beta1, t));
    bc2_sqrt[i] = std::sqrt(1.0 - std::pow(options_.beta2, t));
    P[i] = b.params[i].data_ptr<float>();
    G[i] = b.grads[i].data_ptr<float>();
    M[i] = b.slots[0][i].data_ptr<float>();
    V[i] = b.slots[1][i].data_ptr<float>();
    numels[i] = b.params[i].numel();
  }
  internal::ForEachChunk(numels, [&](int64_t i, int64_t lo, int64_t hi) {
    float* __restrict p = P[i];
    const float* __restrict gr = G[i];
    float* __restrict m = M[i];
    float* __restrict v = V[i];
    const float ss = step_size[i], bc = bc2_sqrt[i];
    for (int64_t k = lo; k < hi; ++k) {
      const float pk = p[k];
      const float gk = gr[k] + l2 * pk;
      const float mk = m[k] * b1 + one_minus_b1 * gk;
      const float vk = v[k] * b2 + one_minus_b2 * (gk * gk);
      m[k] = mk;
      v[k] = vk;
      const float denom = std::sqrt(vk) / bc + eps;
      p[k] = pk * decay + ss * (mk / denom);
    }
  });
}

void AdamW::ForeachStep(Batch& b, double lr, double wd) {
  const bool decoupled = options_.decoupled_weight_decay;
  std::vector<at::Tensor>& params = b.params;
  std::vector<at::Tensor>& m = b.slots[0];
  std::vector<at::Tensor>& v = b.slots[1];
  std::vector<at::Tensor> grads =
      (!decoupled && wd != 0) ? at::_foreach_add(b.grads, params, wd) : b.grads;
  if (decoupled && wd != 0) at::_foreach_mul_(params, 1.0 - lr * wd);
  at::_foreach_mul_(m, options_.beta1);
  at::_foreach_add_(m, grads, 1.0 - options_.beta1);
  at::_foreach_mul_(v, options_.beta2);
  at::_foreach_addcmul_(v, grads, grads, 1.0 - options_.beta2);
  std::vector<at::Scalar> step_size, bc2_sqrt;
  for (int64_t t : b.steps) {
    step_size.emplace_back(-lr / (1.0 - std::pow(options_.beta1, static_cast<double>(t))));
    bc2_sqrt.emplace_back(std::sqrt(1.0 - std::pow(options_.beta2, static_cast<double>(t))));
  }
  std::vector<at::Tensor> denom = at::_foreach_sqrt(v);
  at::_foreach_div_(denom, bc2_sqrt);
  at::_foreach_add_(denom, options_.eps);
  at::_foreach_addcdiv_(params, m, denom, step_size);
}

}  // namespace cf::optim
