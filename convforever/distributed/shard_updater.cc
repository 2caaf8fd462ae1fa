#include "convforever/distributed/shard_updater.h"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "absl/strings/str_cat.h"

namespace cf::distributed {
namespace {

// State tensors are named "<param name>@<offset>/<slot>" so a shard's state maps back to the
// elements it covers.
std::string StateName(const ShardParam& p, const char* slot) {
  return absl::StrCat(p.name, "@", p.offset, "/", slot);
}

absl::Status LoadInto(const std::vector<std::pair<std::string, at::Tensor>>& state,
                      const std::string& name, at::Tensor& dst) {
  for (const auto& [key, value] : state) {
    if (key != name) continue;
    if (value.numel() != dst.numel()) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer state '", name, "' has ",
                                                     value.numel(), " elements, expected ",
                                                     dst.numel()));
    }
    dst.copy_(value.view_as(dst));
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("optimizer state '", name, "' is missing"));
}

class SgdUpdater : public ShardUpdater {
 public:
  SgdUpdater(const std::vector<ShardParam>& shard, SgdOptions o) : shard_(shard), o_(o) {
    for (const ShardParam& p : shard_) momentum_.push_back(at::zeros_like(p.tensor));
  }
  absl::Status Step(double lr) override {
    at::NoGradGuard no_grad;
    double rate = lr >= 0 ? lr : o_.lr;
    for (size_t i = 0; i < shard_.size(); ++i) {
      at::Tensor p = shard_[i].tensor;
      if (!p.grad().defined()) continue;
      at::Tensor g = p.grad();
      if (o_.weight_decay != 0) g = g.add(p, o_.weight_decay);
      if (o_.momentum != 0) {
        if (step_ == 0) {
          momentum_[i].copy_(g);
        } else {
          momentum_[i].mul_(o_.momentum).add_(g);
        }
        g = momentum_[i];
      }
      p.add_(g, -rate);
    }
    ++step_;
    return absl::OkStatus();
  }
  std::vector<std::pair<std::string, at::Tensor>> StateDict() const override {
    std::vector<std::pair<std::string, at::Tensor>> out = {{"step", at::full({1}, double(step_), at::kDouble)}};
    for (size_t i = 0; i < shard_.size(); ++i) out.emplace_back(StateName(shard_[i], "momentum"), momentum_[i]);
    return out;
  }
  absl::Status LoadStateDict(const std::vector<std::pair<std::string, at::Tensor>>& state) override {
    at::Tensor step = at::zeros({1}, at::kDouble);
    absl::Status s = LoadInto(state, "step", step);
    if (!s.ok()) return s;
    step_ = static_cast<int64_t>(step.item<double>());
    for (size_t i = 0; i < shard_.size(); ++i) {
      s = LoadInto(state, StateName(shard_[i], "momentum"), momentum_[i]);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  std::vector<ShardParam> shard_;
  SgdOptions o_;
  std::vector<at::Tensor> momentum_;
  int64_t step_ = 0;
};

class AdamWUpdater : public ShardUpdater {
 public:
  AdamWUpdater(const std::vector<ShardParam>& shard, AdamWOptions o) : shard_(shard), o_(o) {
    for (const ShardParam& p : shard_) {
      m_.push_back(at::zeros_like(p.tensor));
      v_.push_back(at::zeros_like(p.tensor));
    }
  }
  absl::Status Step(double lr) override {
    at::NoGradGuard no_grad;
    double rate = lr >= 0 ? lr : o_.lr;
    ++step_;
    double bc1 = 1 - std::pow(o_.beta1, static_cast<double>(step_));
    double bc2 = 1 - std::pow(o_.beta2, static_cast<double>(step_));
    for (size_t i = 0; i < shard_.size(); ++i) {
      at::Tensor p = shard_[i].tensor;
      if (!p.grad().defined()) continue;
      const at::Tensor& g = p.grad();
      p.mul_(1 - rate * o_.weight_decay);
      m_[i].mul_(o_.beta1).add_(g, 1 - o_.beta1);
      v_[i].mul_(o_.beta2).addcmul_(g, g, 1 - o_.beta2);
      at::Tensor denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(o_.eps);
      p.addcdiv_(m_[i], denom, -rate / bc1);
    }
    return absl::OkStatus();
  }
  std::vector<std::pair<std::string, at::Tensor>> StateDict() const override {
    std::vector<std::pair<std::string, at::Tensor>> out = {{"step", at::full({1}, double(step_), at::kDouble)}};
    for (size_t i = 0; i < shard_.size(); ++i) {
      out.emplace_back(StateName(shard_[i], "exp_avg"), m_[i]);
      out.emplace_back(StateName(shard_[i], "exp_avg_sq"), v_[i]);
    }
    return out;
  }
  absl::Status LoadStateDict(const std::vector<std::pair<std::string, at::Tensor>>& state) override {
    at::Tensor step = at::zeros({1}, at::kDouble);
    absl::Status s = LoadInto(state, "step", step);
    if (!s.ok()) return s;
    step_ = static_cast<int64_t>(step.item<double>());
    for (size_t i = 0; i < shard_.size(); ++i) {
      s = LoadInto(state, StateName(shard_[i], "exp_avg"), m_[i]);
      if (s.ok()) s = LoadInto(state, StateName(shard_[i], "exp_avg_sq"), v_[i]);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  std::vector<ShardParam> shard_;
  AdamWOptions o_;
  std::vector<at::Tensor> m_, v_;
  int64_t step_ = 0;
};

}  // namespace

std::unique_ptr<ShardUpdater> MakeSgdUpdater(const std::vector<ShardParam>& shard, SgdOptions o) {
  return std::make_unique<SgdUpdater>(shard, o);
}

std::unique_ptr<ShardUpdater> MakeAdamWUpdater(const std::vector<ShardParam>& shard, AdamWOptions o) {
  return std::make_unique<AdamWUpdater>(shard, o);
}

}  // namespace cf::distributed
