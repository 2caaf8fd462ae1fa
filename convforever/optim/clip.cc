#include "convforever/optim/clip.h"

#include <ATen/core/grad_mode.h>

namespace cf::optim {
namespace {

std::vector<at::Tensor> Grads(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> grads;
  grads.reserve(params.size());
  for (const at::Tensor& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  return grads;
}

at::Tensor TotalNorm(const std::vector<at::Tensor>& grads) {
  const std::vector<at::Tensor> norms = at::_foreach_norm(grads, 2);
  return at::stack(norms).to(at::kFloat).norm(2);
}

}  // namespace

double ClipGradNorm(const std::vector<at::Tensor>& params, double max_norm) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads = Grads(params);
  if (grads.empty()) return 0.0;
  at::Tensor total = TotalNorm(grads);
  if (max_norm > 0) {
    // As PyTorch: multiply by the clamped coefficient on the device, no branch on the host.
    at::Tensor coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
    for (at::Tensor& g : grads) g.mul_(coef.to(g.scalar_type()));
  }
  return total.item<double>();
}

double GradNorm(const std::vector<at::Tensor>& params) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads = Grads(params);
  return grads.empty() ? 0.0 : TotalNorm(grads).item<double>();
}

std::vector<at::Tensor> AllParams(const std::vector<ParamGroup>& groups) {
  std::vector<at::Tensor> out;
  for (const ParamGroup& g : groups) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

void ScaleGrads(const std::vector<at::Tensor>& params, double factor) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads = Grads(params);
  if (!grads.empty()) at::_foreach_mul_(grads, factor);
}

}  // namespace cf::optim
