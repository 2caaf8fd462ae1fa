// Optimizer hyperparameters, free of LibTorch so config parsers (deepspeed_config) can fill them
// without compiling against ATen. Which fields each `type` reads:
//   adamw: lr, weight_decay, beta1, beta2, eps, decoupled_weight_decay (false = Adam + L2)
//   sgd:   lr, weight_decay (L2, added to the gradient as torch.optim.SGD), momentum, dampening,
//          nesterov
//   lion:  lr, weight_decay (decoupled), beta1 (update interpolation), beta2 (momentum), defaults
//          of the paper are beta1=0.9, beta2=0.99
//   lamb:  lr, weight_decay, beta1, beta2, eps (paper default 1e-6), max_trust / min_trust clamp
//          of the trust ratio (DeepSpeed's max_coeff / min_coeff; 0 = no clamp)
// Plain value type; thread-compatible.
#ifndef CONVFOREVER_OPTIM_OPTIMIZER_OPTIONS_H_
#define CONVFOREVER_OPTIM_OPTIMIZER_OPTIONS_H_

#include <string>

namespace cf::optim {

struct OptimizerOptions {
  std::string type = "adamw";  // adamw | sgd | lion | lamb
  double lr = 1e-3;            // default lr; Step(lr) passes the scheduled value
  double weight_decay = 0.0;   // not read by the optimizers: each ParamGroup carries its own
                               // (fill ParamGroupOptions::weight_decay from this)
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double momentum = 0.9;
  double dampening = 0.0;
  bool nesterov = false;
  bool decoupled_weight_decay = true;  // adamw only
  double max_trust = 0.0;              // lamb only; 0 = unclamped
  double min_trust = 0.0;              // lamb only
  // "auto": AdamW uses its fused single-pass kernel when every tensor of a group is a contiguous
  // float32 CPU tensor, at::_foreach_* ops otherwise (GPU, other dtypes, other optimizers);
  // "foreach": always the foreach ops.
  std::string implementation = "auto";
};

}  // namespace cf::optim

#endif  // CONVFOREVER_OPTIM_OPTIMIZER_OPTIONS_H_
