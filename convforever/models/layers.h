// Building blocks shared by the models: channels-first LayerNorm, stochastic depth, truncated
// normal init, and per-stage activation checkpointing.
//
// All functions take and return `[B, C, H, W]` unless stated; none keeps references to inputs.
#ifndef CONVFOREVER_MODELS_LAYERS_H_
#define CONVFOREVER_MODELS_LAYERS_H_

#include <functional>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace cf::models {

// LayerNorm over the channel dim of `[B, C, H, W]` (timm's LayerNorm2d): permute to channels-last,
// normalize the last dim, permute back. Parameters `weight`, `bias` of shape [C].
class LayerNorm2dImpl : public torch::nn::Module {
 public:
  explicit LayerNorm2dImpl(int64_t channels, double eps = 1e-6);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight, bias;

 private:
  int64_t channels_;
  double eps_;
};
TORCH_MODULE(LayerNorm2d);

// Stochastic depth (Huang et al. 2016, arXiv 1603.09382) as timm's drop_path: in training, zeroes
// whole samples of the residual branch with probability `p` and scales the rest by 1/(1-p).
// Identity when `p == 0` or not training.
at::Tensor DropPath(const at::Tensor& x, double p, bool training);

// Fills `w` in place from N(0, std^2) truncated to [-2 std, 2 std] (timm's trunc_normal_).
void TruncNormal_(at::Tensor w, double std);

// Drop-path rate of block `index` of `total`: linear from 0 to `max_rate` (timm's schedule).
double LinearDropPathRate(double max_rate, int index, int total);

// Runs `fn(x)` without storing its activations and recomputes it in backward (Chen et al. 2016,
// arXiv 1604.06174), through a custom autograd function. `params` are the tensors `fn` reads that
// need gradients (the stage's parameters): their gradients flow as if `fn` had run normally. The
// default generator's state of x's device is saved and restored for the recompute, so random ops
// (drop path) see the same draws and gradients equal the non-checkpointed ones.
at::Tensor Checkpoint(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& x,
                      const std::vector<at::Tensor>& params);

// Every parameter of `module` that requires grad (for Checkpoint's `params`).
std::vector<at::Tensor> TrainableParameters(const torch::nn::Module& module);

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_LAYERS_H_
