#include "convforever/optim/loss_scaler.h"

#include <algorithm>
#include <ATen/core/grad_mode.h>

#include "absl/strings/str_cat.h"

namespace cf::optim {
namespace {

std::vector<at::Tensor> AllParamsOf(const Optimizer& optimizer) {
  std::vector<at::Tensor> out;
  for (const ParamGroup& g : optimizer.groups()) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

}  // namespace

LossScaler::LossScaler(LossScalerOptions options)
    : options_(options),
      scale_(static_cast<float>(options.init_scale)),
      hysteresis_left_(std::max<int64_t>(options.hysteresis, 1)) {}

at::Tensor LossScaler::Scale(const at::Tensor& loss) const {
  if (!options_.enabled) return loss;
  return loss * static_cast<double>(scale_);
}

bool LossScaler::Unscale(const std::vector<at::Tensor>& params) {
  if (!options_.enabled || unscaled_) return found_inf_;
  unscaled_ = true;
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return found_inf_ = false;
  // As GradScaler: the reciprocal in double, then rounded to float32.
  const float inv = static_cast<float>(1.0 / static_cast<double>(scale_));
  if (grads[0].is_cuda()) {
    at::Tensor found = at::zeros({1}, grads[0].options().dtype(at::kFloat));
    at::Tensor inv_t = at::full({1}, inv, grads[0].options().dtype(at::kFloat));
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found, inv_t);
    found_inf_ = found.item<float>() != 0.0f;
  } else {
    at::_foreach_mul_(grads, static_cast<double>(inv));
    at::Tensor all_finite = at::ones({}, at::kBool);
    for (const at::Tensor& g : grads) all_finite = all_finite.logical_and(at::isfinite(g).all());
    found_inf_ = !all_finite.item<bool>();
  }
  return found_inf_;
}

bool LossScaler::Step(Optimizer& optimizer, double lr) {
  if (Unscale(AllParamsOf(optimizer))) {
    ++skipped_;
    return false;
  }
  optimizer.Step(lr);
  return true;
}

void LossScaler::Update() { Update(found_inf_); }

void LossScaler::Update(bool found_inf) {
  unscaled_ = false;
  found_inf_ = false;
  if (!options_.enabled || !options_.dynamic) return;
  // The rules of _amp_update_scale_ (float32 arithmetic), plus DeepSpeed's hysteresis / floor.
  if (found_inf) {
    growth_tracker_ = 0;
    if (hysteresis_left_ <= 1) {
      scale_ = std::max(scale_ * static_cast<float>(options_.backoff_factor),
                        static_cast<float>(options_.min_scale));
    } else {
      --hysteresis_left_;
    }
    return;
  }
  if (++growth_tracker_ == options_.growth_interval) {
    scale_ = scale_ * static_cast<float>(options_.growth_factor);
    growth_tracker_ = 0;
    hysteresis_left_ = std::max<int64_t>(options_.hysteresis, 1);
  }
}

nlohmann::json LossScaler::SaveState() const {
  return {{"scale", static_cast<double>(scale_)},
          {"growth_tracker", growth_tracker_},
          {"hysteresis_left", hysteresis_left_},
          {"skipped_steps", skipped_}};
}

absl::Status LossScaler::LoadState(const nlohmann::json& state) {
  if (!state.is_object()) return absl::InvalidArgumentError("loss scaler state: not an object");
  for (const char* key : {"growth_tracker", "hysteresis_left", "skipped_steps"}) {
    if (!state.contains(key) || !state[key].is_number_integer() || state[key].get<int64_t>() < 0) {
      return absl::InvalidArgumentError(absl::StrCat("loss scaler state: \"", key, "\" missing or invalid"));
    }
  }
  if (!state.contains("scale") || !state["scale"].is_number() || !(state["scale"].get<double>() > 0)) {
    return absl::InvalidArgumentError("loss scaler state: \"scale\" missing or not > 0");
  }
  scale_ = static_cast<float>(state["scale"].get<double>());
  growth_tracker_ = state["growth_tracker"];
  hysteresis_left_ = state["hysteresis_left"];
  skipped_ = state["skipped_steps"];
  unscaled_ = found_inf_ = false;
  return absl::OkStatus();
}

}  // namespace cf::optim
