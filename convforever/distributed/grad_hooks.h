// Runs a callback right after autograd has accumulated a parameter's gradient into `.grad` (a
// post-hook on the parameter's AccumulateGrad node, as c10d's Reducer does). `Tensor::register_hook`
// would not do: it fires with the incoming gradient *before* accumulation, so on accumulation
// micro-steps it never sees the summed `.grad`. The AccumulateGrad API (impl::grad_accumulator,
// Node::add_post_hook/del_post_hook, LambdaPostHook) is an internal one; this shim is the one place
// that touches it, for LibTorch 1.13 and 2.x alike.
// The returned handle keeps the accumulator node alive and removes the hook when destroyed.
// The callback runs on the autograd thread executing backward for the parameter's device.
#ifndef CONVFOREVER_DISTRIBUTED_GRAD_HOOKS_H_
#define CONVFOREVER_DISTRIBUTED_GRAD_HOOKS_H_

#include <cstdint>
#include <functional>
#include <memory>

#include <ATen/core/Tensor.h>

namespace torch::autograd {
struct Node;
}

namespace cf::distributed {

class GradAccumulatedHook {
 public:
  // `param` must be a leaf tensor that requires grad.
  GradAccumulatedHook(const at::Tensor& param, std::function<void()> callback);
  ~GradAccumulatedHook();
  GradAccumulatedHook(const GradAccumulatedHook&) = delete;
  GradAccumulatedHook& operator=(const GradAccumulatedHook&) = delete;

 private:
  std::shared_ptr<torch::autograd::Node> accumulator_;
  uintptr_t key_ = 0;
};

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_GRAD_HOOKS_H_
