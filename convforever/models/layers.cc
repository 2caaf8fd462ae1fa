#include "convforever/models/layers.h"

#include <mutex>

#include <ATen/core/Generator.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/init.h>

#include "convforever/models/model.h"

namespace cf::models {

LayerNorm2dImpl::LayerNorm2dImpl(int64_t channels, double eps) : channels_(channels), eps_(eps) {
  weight = register_parameter("weight", at::ones({channels}));
  bias = register_parameter("bias", at::zeros({channels}));
}

at::Tensor LayerNorm2dImpl::forward(const at::Tensor& x) {
  // Under autocast the input may be bf16/fp16 while the weights are fp32; LibTorch 1.13's CPU
  // layer_norm rejects mixed dtypes, and normalizing in the weights' precision is the numerically
  // safe choice anyway (as autocast's fp32 policy for norms on CUDA).
  at::Tensor y = at::layer_norm(x.permute({0, 2, 3, 1}).to(weight.scalar_type()), {channels_},
                                weight, bias, eps_);
  return y.permute({0, 3, 1, 2});
}

at::Tensor DropPath(const at::Tensor& x, double p, bool training) {
  if (p <= 0.0 || !training) return x;
  const double keep = 1.0 - p;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  at::Tensor mask = at::empty(shape, x.options()).bernoulli_(keep);
  if (keep > 0.0) mask.div_(keep);
  return x * mask;
}

void TruncNormal_(at::Tensor w, double std) {
  at::NoGradGuard no_grad;
  // Same method as PyTorch's trunc_normal_: inverse CDF of a uniform draw between the bounds.
  const double lo = 0.5 * (1.0 + std::erf(-2.0 / std::sqrt(2.0)));
  const double hi = 0.5 * (1.0 + std::erf(2.0 / std::sqrt(2.0)));
  w.uniform_(2 * lo - 1, 2 * hi - 1);
  w.erfinv_();
  w.mul_(std * std::sqrt(2.0));
  w.clamp_(-2.0 * std, 2.0 * std);
}

double LinearDropPathRate(double max_rate, int index, int total) {
  if (total <= 1) return 0.0;
  return max_rate * static_cast<double>(index) / static_cast<double>(total - 1);
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The stage function travels to backward inside an IValue capsule, so it is freed with the
// autograd graph even when backward never runs.
struct FnHolder : public torch::CustomClassHolder {
  std::function<at::Tensor(const at::Tensor&)> fn;
};

// apply(fn_holder, rng_state, [x, params...]) -> [fn(x)].
struct CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<FnHolder> holder,
                               at::Tensor rng_state, at::TensorList inputs) {
    ctx->saved_data["fn"] = c10::IValue::make_capsule(holder);
    ctx->saved_data["rng"] = rng_state;
    ctx->save_for_backward(inputs.vec());
    at::NoGradGuard no_grad;
    return {holder->fn(inputs[0])};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto holder = c10::static_intrusive_pointer_cast<FnHolder>(ctx->saved_data["fn"].toCapsule());
    variable_list saved = ctx->get_saved_variables();
    at::Tensor x = saved[0].detach().requires_grad_(saved[0].requires_grad());
    at::Tensor out;
    {
      at::Generator gen = at::globalContext().defaultGenerator(x.device());
      at::Tensor current;
      {
        std::lock_guard<std::mutex> lock(gen.mutex());
        current = gen.get_state();
        gen.set_state(ctx->saved_data["rng"].toTensor());
      }
      at::AutoGradMode grad_on(true);
      out = holder->fn(x);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(current);
    }
    variable_list wrt;
    std::vector<size_t> index;
    for (size_t i = 0; i < saved.size(); ++i) {
      at::Tensor t = i == 0 ? x : saved[i];
      if (t.requires_grad()) {
        wrt.push_back(t);
        index.push_back(i);
      }
    }
    // The holder and the rng state take the first two gradient slots (always undefined).
    variable_list grads(saved.size() + 2);
    if (wrt.empty() || !out.requires_grad()) return grads;
    variable_list g = torch::autograd::grad({out}, wrt, {grad_outputs[0]}, /*retain_graph=*/false,
                                            /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t k = 0; k < index.size(); ++k) grads[2 + index[k]] = g[k];
    return grads;
  }
};

}  // namespace

at::Tensor Checkpoint(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& x,
                      const std::vector<at::Tensor>& params) {
  if (!at::GradMode::is_enabled()) return fn(x);
  at::Generator gen = at::globalContext().defaultGenerator(x.device());
  at::Tensor state;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    state = gen.get_state();
  }
  variable_list inputs;
  inputs.reserve(params.size() + 1);
  inputs.push_back(x);
  for (const at::Tensor& p : params) inputs.push_back(p);
  auto holder = c10::make_intrusive<FnHolder>();
  holder->fn = fn;
  return CheckpointFunction::apply(holder, state, at::TensorList(inputs))[0];
}

std::vector<at::Tensor> TrainableParameters(const torch::nn::Module& module) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& p : module.parameters(/*recurse=*/true)) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> Model::StateDict() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) out.emplace_back(item.key(), item.value());
  for (const auto& item : named_buffers(/*recurse=*/true)) out.emplace_back(item.key(), item.value());
  return out;
}

}  // namespace cf::models
