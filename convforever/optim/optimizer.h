// Optimizers over parameter groups with multi-tensor (foreach-style) updates: every step issues
// one at::_foreach_* op per algebraic stage over all parameters of a group (or, for float32 CPU
// tensors, one fused single-pass kernel over the whole list), never a Python-style loop of small
// per-parameter kernels. Algorithms and the papers they follow:
//   AdamW  Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization" (torch.optim.AdamW)
//   SGD    momentum + Nesterov (Sutskever et al. 2013), as torch.optim.SGD
//   Lion   Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2
//   LAMB   You et al. 2020, "Large Batch Optimization for Deep Learning", Algorithm 2
// Contract: parameters are tensors of any shape/dtype/device shared with the model; Step(lr)
// updates in place the parameters that have a gradient (the others are skipped and their step
// count does not advance, as PyTorch does), under a no-grad guard. Each parameter keeps its own
// state (step count, moments), created lazily at its first step. Not thread-safe: one thread
// calls Step / ZeroGrad / SaveState / LoadState.
#ifndef CONVFOREVER_OPTIM_OPTIMIZER_H_
#define CONVFOREVER_OPTIM_OPTIMIZER_H_

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convforever/optim/optimizer_options.h"
#include "convforever/optim/param_groups.h"
#include "nlohmann/json.hpp"

namespace cf::optim {

class Optimizer {
 public:
  Optimizer(OptimizerOptions options, std::vector<ParamGroup> groups,
            std::vector<std::string> slot_names);
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update with learning rate `lr` (group g uses lr * groups()[g].lr_scale).
  virtual void Step(double lr) = 0;
  // Drops every gradient (set_to_none semantics).
  void ZeroGrad();

  // State as named tensors "<param name>/<slot>" (CPU copies) + meta {"type", "steps":{name:n}}.
  // LoadState checks names, shapes and type and reports the first mismatch by name.
  virtual absl::Status SaveState(std::vector<std::pair<std::string, at::Tensor>>* tensors,
                                 nlohmann::json* meta) const;
  virtual absl::Status LoadState(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                 const nlohmann::json& meta);

  const std::vector<ParamGroup>& groups() const { return groups_; }
  const OptimizerOptions& options() const { return options_; }
  // Steps taken by one parameter (0 before its first update).
  int64_t step_count(size_t group, size_t param) const { return state_[group][param].step; }

 protected:
  struct ParamState {
    int64_t step = 0;
    std::vector<at::Tensor> slots;  // one per slot name; undefined until first use
  };
  // The parameters of group `g` that have a gradient, with their state; each state's step is
  // incremented and its slots are created as zeros_like(param) when `zero_init` says so.
  struct Batch {
    std::vector<at::Tensor> params, grads;
    std::vector<std::vector<at::Tensor>> slots;  // [slot][i]
    std::vector<int64_t> steps;                  // after increment
    std::vector<bool> fresh;                     // first step of this parameter
    bool fused_ok = true;  // every tensor float32, CPU, contiguous, same shapes as params
  };
  Batch Gather(size_t g, const std::vector<bool>& zero_init);
  // Writes back slots created or replaced in `b` (for slots assigned a new tensor).
  void Scatter(size_t g, const Batch& b, size_t slot);
  bool UseFused(const Batch& b) const;
  // Whether slot `s` must exist in a saved state for every stepped parameter.
  virtual bool SlotRequired(size_t s) const { return true; }

  OptimizerOptions options_;
  std::vector<ParamGroup> groups_;
  std::vector<std::string> slot_names_;
  std::vector<std::vector<ParamState>> state_;  // [group][param]
  std::vector<std::vector<size_t>> batch_index_;  // [group] -> indices of last Gather
};

// Builds the optimizer for `options.type`. Errors name the culprit: unknown type, negative lr or
// weight decay, betas outside [0, 1), nesterov without momentum, duplicate or mismatched names.
absl::StatusOr<std::unique_ptr<Optimizer>> CreateOptimizer(const OptimizerOptions& options,
                                                           std::vector<ParamGroup> groups);

}  // namespace cf::optim

#endif  // CONVFOREVER_OPTIM_OPTIMIZER_H_
