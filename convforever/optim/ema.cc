#include "convforever/optim/ema.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <ATen/core/grad_mode.h>

#include "absl/strings/str_cat.h"

namespace cf::optim {

Ema::Ema(std::vector<std::pair<std::string, at::Tensor>> named_tensors, EmaOptions options)
    : options_(options) {
  at::NoGradGuard no_grad;
  for (auto& [name, t] : named_tensors) {
    if (c10::isFloatingType(t.scalar_type())) floating_.push_back(names_.size());
    names_.push_back(name);
    shadow_.push_back(t.detach().clone());
    model_.push_back(std::move(t));
  }
}

double Ema::DecayAt(int64_t step) const {
  if (!options_.warmup) return options_.decay;
  if (step <= 0) return 0.0;
  const double d = 1.0 - std::pow(1.0 + static_cast<double>(step) / options_.warmup_gamma,
                                  -options_.warmup_power);
  return std::max(std::min(d, options_.decay), options_.min_decay);
}

void Ema::Update(int64_t step) {
  at::NoGradGuard no_grad;
  const double d = DecayAt(step);
  std::vector<at::Tensor> shadow, model;
  size_t f = 0;
  for (size_t i = 0; i < shadow_.size(); ++i) {
    if (f < floating_.size() && floating_[f] == i) {
      shadow.push_back(shadow_[i]);
      model.push_back(model_[i].detach());
      ++f;
    } else {
      shadow_[i].copy_(model_[i].detach());
    }
  }
  if (!shadow.empty()) {
    // No _foreach_lerp_ in LibTorch 1.13: two foreach ops instead of one.
    at::_foreach_mul_(shadow, d);
    at::_foreach_add_(shadow, model, 1.0 - d);
  }
  ++updates_;
}

Ema::SwapGuard::SwapGuard(Ema* ema) : ema_(ema) {
  at::NoGradGuard no_grad;
  TORCH_CHECK(!ema_->swapped_, "Ema::SwapIn while already swapped in");
  ema_->swapped_ = true;
  backup_.reserve(ema_->model_.size());
  for (size_t i = 0; i < ema_->model_.size(); ++i) {
    at::Tensor m = ema_->model_[i].detach();
    backup_.push_back(m.clone());
    m.copy_(ema_->shadow_[i]);
  }
}

Ema::SwapGuard::~SwapGuard() {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < backup_.size(); ++i) ema_->model_[i].detach().copy_(backup_[i]);
  ema_->swapped_ = false;
}

absl::Status Ema::SaveState(std::vector<std::pair<std::string, at::Tensor>>* tensors,
                            nlohmann::json* meta) const {
  try {
    for (size_t i = 0; i < names_.size(); ++i) {
      tensors->emplace_back(names_[i], shadow_[i].to(at::kCPU, false, /*copy=*/true));
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("EMA SaveState: ", e.what()));
  }
  (*meta)["decay"] = options_.decay;
  (*meta)["updates"] = updates_;
  return absl::OkStatus();
}

absl::Status Ema::LoadState(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                            const nlohmann::json& meta) {
  if (!meta.is_object() || !meta.contains("updates") || !meta["updates"].is_number_integer()) {
    return absl::InvalidArgumentError("EMA state: meta \"updates\" missing or not an integer");
  }
  std::map<std::string, at::Tensor> by_name(tensors.begin(), tensors.end());
  if (by_name.size() != tensors.size()) return absl::InvalidArgumentError("EMA state: duplicate tensor names");
  for (size_t i = 0; i < names_.size(); ++i) {
    auto it = by_name.find(names_[i]);
    if (it == by_name.end()) return absl::InvalidArgumentError(absl::StrCat("EMA state: missing tensor \"", names_[i], "\""));
    if (it->second.sizes() != shadow_[i].sizes()) {
      return absl::InvalidArgumentError(absl::StrCat("EMA state: tensor \"", names_[i], "\" has shape ",
                                                     c10::str(it->second.sizes()), ", model has ",
                                                     c10::str(shadow_[i].sizes())));
    }
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("EMA state: unexpected tensor \"", by_name.begin()->first, "\""));
  }
  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> all(tensors.begin(), tensors.end());
  for (size_t i = 0; i < names_.size(); ++i) shadow_[i].copy_(all[names_[i]]);
  updates_ = meta["updates"].get<int64_t>();
  return absl::OkStatus();
}

}  // namespace cf::optim
