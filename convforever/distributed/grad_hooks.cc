#include "convforever/distributed/grad_hooks.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

namespace cf::distributed {

GradAccumulatedHook::GradAccumulatedHook(const at::Tensor& param, std::function<void()> callback) {
  accumulator_ = torch::autograd::impl::grad_accumulator(param);
  TORCH_CHECK(accumulator_ != nullptr, "GradAccumulatedHook: parameter is not a leaf requiring grad");
  auto hook = std::make_unique<torch::autograd::utils::LambdaPostHook>(
      [callback = std::move(callback)](const torch::autograd::variable_list& outputs,
                                       const torch::autograd::variable_list& /*inputs*/) {
        callback();
        return outputs;
      });
  key_ = accumulator_->add_post_hook(std::move(hook));
}

GradAccumulatedHook::~GradAccumulatedHook() { accumulator_->del_post_hook(key_); }

}  // namespace cf::distributed
