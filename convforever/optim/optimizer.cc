#include "convforever/optim/optimizer.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "convforever/optim/optimizers.h"

namespace cf::optim {

Optimizer::Optimizer(OptimizerOptions options, std::vector<ParamGroup> groups,
                     std::vector<std::string> slot_names)
    : options_(std::move(options)), groups_(std::move(groups)), slot_names_(std::move(slot_names)) {
  state_.resize(groups_.size());
  batch_index_.resize(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {
    ParamGroup& group = groups_[g];
    if (group.names.empty()) {
      for (size_t j = 0; j < group.params.size(); ++j) group.names.push_back(absl::StrCat("g", g, ".p", j));
    }
    state_[g].resize(group.params.size());
    for (ParamState& s : state_[g]) s.slots.resize(slot_names_.size());
  }
}

Optimizer::~Optimizer() = default;

void Optimizer::ZeroGrad() {
  for (ParamGroup& g : groups_) {
    for (at::Tensor& p : g.params) {
      if (p.grad().defined()) p.mutable_grad() = at::Tensor();
    }
  }
}

Optimizer::Batch Optimizer::Gather(size_t g, const std::vector<bool>& zero_init) {
  Batch b;
  b.slots.resize(slot_names_.size());
  batch_index_[g].clear();
  const ParamGroup& group = groups_[g];
  for (size_t j = 0; j < group.params.size(); ++j) {
    const at::Tensor& p = group.params[j];
    const at::Tensor& grad = p.grad();
    if (!grad.defined()) continue;
    ParamState& st = state_[g][j];
    ++st.step;
    b.params.push_back(p);
    b.grads.push_back(grad);
    b.steps.push_back(st.step);
    b.fresh.push_back(st.step == 1);
    auto cpu_f32 = [](const at::Tensor& t) {
      return t.defined() && t.scalar_type() == at::kFloat && t.device().is_cpu() &&
             t.is_contiguous() && t.layout() == at::kStrided;
    };
    b.fused_ok = b.fused_ok && cpu_f32(p) && cpu_f32(grad) && grad.sizes() == p.sizes();
    for (size_t s = 0; s < slot_names_.size(); ++s) {
      if (!st.slots[s].defined() && zero_init[s]) {
        st.slots[s] = at::zeros_like(p, at::MemoryFormat::Contiguous);
      }
      if (st.slots[s].defined()) b.fused_ok = b.fused_ok && cpu_f32(st.slots[s]);
      b.slots[s].push_back(st.slots[s]);
    }
    batch_index_[g].push_back(j);
  }
  return b;
}

void Optimizer::Scatter(size_t g, const Batch& b, size_t slot) {
  for (size_t i = 0; i < batch_index_[g].size(); ++i) {
    state_[g][batch_index_[g][i]].slots[slot] = b.slots[slot][i];
  }
}

bool Optimizer::UseFused(const Batch& b) const {
  return options_.implementation != "foreach" && b.fused_ok;
}

absl::Status Optimizer::SaveState(std::vector<std::pair<std::string, at::Tensor>>* tensors,
                                  nlohmann::json* meta) const {
  (*meta)["type"] = options_.type;
  nlohmann::json steps = nlohmann::json::object();
  try {
    for (size_t g = 0; g < groups_.size(); ++g) {
      for (size_t j = 0; j < groups_[g].params.size(); ++j) {
        const ParamState& st = state_[g][j];
        if (st.step == 0) continue;
        const std::string& name = groups_[g].names[j];
        steps[name] = st.step;
        for (size_t s = 0; s < slot_names_.size(); ++s) {
          if (!st.slots[s].defined()) continue;
          tensors->emplace_back(absl::StrCat(name, "/", slot_names_[s]),
                                st.slots[s].detach().to(at::kCPU, /*non_blocking=*/false,
                                                        /*copy=*/true));
        }
      }
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("optimizer SaveState: ", e.what()));
  }
  (*meta)["steps"] = std::move(steps);
  return absl::OkStatus();
}

absl::Status Optimizer::LoadState(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                  const nlohmann::json& meta) {
  if (!meta.is_object() || !meta.contains("type") || !meta["type"].is_string() ||
      meta["type"].get<std::string>() != options_.type) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optimizer state: meta \"type\" is ", meta.is_object() && meta.contains("type")
                                                  ? meta["type"].dump() : "missing",
        ", expected \"", options_.type, "\""));
  }
  if (!meta.contains("steps") || !meta["steps"].is_object()) {
    return absl::InvalidArgumentError("optimizer state: meta \"steps\" missing or not an object");
  }
  std::map<std::string, std::pair<size_t, size_t>> where;
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t j = 0; j < groups_[g].names.size(); ++j) where[groups_[g].names[j]] = {g, j};
  }
  std::map<std::string, at::Tensor> by_name(tensors.begin(), tensors.end());
  // Build the new state aside, so a failed load leaves the optimizer untouched.
  auto fresh = state_;
  for (auto& group : fresh) {
    for (ParamState& s : group) s = ParamState{0, std::vector<at::Tensor>(slot_names_.size())};
  }
  std::set<std::string> used;
  for (const auto& [name, step] : meta["steps"].items()) {
    auto it = where.find(name);
    if (it == where.end()) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer state: unknown parameter \"", name, "\""));
    }
    if (!step.is_number_integer() || step.get<int64_t>() < 1) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer state: bad step for \"", name, "\": ", step.dump()));
    }
    const auto [g, j] = it->second;
    const at::Tensor& p = groups_[g].params[j];
    ParamState& st = fresh[g][j];
    st.step = step.get<int64_t>();
    for (size_t s = 0; s < slot_names_.size(); ++s) {
      const std::string key = absl::StrCat(name, "/", slot_names_[s]);
      auto t = by_name.find(key);
      if (t == by_name.end()) {
        if (SlotRequired(s)) return absl::InvalidArgumentError(absl::StrCat("optimizer state: missing tensor \"", key, "\""));
        continue;
      }
      if (t->second.sizes() != p.sizes()) {
        return absl::InvalidArgumentError(absl::StrCat("optimizer state: tensor \"", key, "\" has shape ",
                                                       c10::str(t->second.sizes()), ", parameter has ",
                                                       c10::str(p.sizes())));
      }
      st.slots[s] = t->second.to(p.options(), /*non_blocking=*/false, /*copy=*/true).contiguous();
      used.insert(key);
    }
  }
  for (const auto& [key, _] : by_name) {
    if (!used.count(key)) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer state: unexpected tensor \"", key, "\""));
    }
  }
  state_ = std::move(fresh);
  return absl::OkStatus();
}

namespace {

absl::Status Validate(const OptimizerOptions& o, const std::vector<ParamGroup>& groups) {
  auto bad = [](const std::string& key, double v, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer option ", key, "=", v, ": ", why));
  };
  if (!(o.lr >= 0)) return bad("lr", o.lr, "must be >= 0");
  if (!(o.eps >= 0)) return bad("eps", o.eps, "must be >= 0");
  if (!(o.beta1 >= 0 && o.beta1 < 1)) return bad("beta1", o.beta1, "must be in [0, 1)");
  if (!(o.beta2 >= 0 && o.beta2 < 1)) return bad("beta2", o.beta2, "must be in [0, 1)");
  if (!(o.momentum >= 0)) return bad("momentum", o.momentum, "must be >= 0");
  if (o.type == "sgd" && o.nesterov && (o.momentum <= 0 || o.dampening != 0)) {
    return bad("nesterov", 1, "needs momentum > 0 and dampening = 0");
  }
  if (o.min_trust < 0 || (o.max_trust > 0 && o.min_trust > o.max_trust)) {
    return bad("min_trust", o.min_trust, "must be >= 0 and <= max_trust");
  }
  if (o.implementation != "auto" && o.implementation != "foreach") {
    return absl::InvalidArgumentError(absl::StrCat("optimizer option implementation=\"", o.implementation,
                                                   "\": expected auto or foreach"));
  }
  std::set<std::string> seen;
  for (size_t g = 0; g < groups.size(); ++g) {
    const ParamGroup& group = groups[g];
    if (!(group.weight_decay >= 0)) return bad(absl::StrCat("groups[", g, "].weight_decay"), group.weight_decay, "must be >= 0");
    if (!(group.lr_scale >= 0)) return bad(absl::StrCat("groups[", g, "].lr_scale"), group.lr_scale, "must be >= 0");
    if (!group.names.empty() && group.names.size() != group.params.size()) {
      return absl::InvalidArgumentError(absl::StrCat("param group ", g, ": ", group.names.size(),
                                                     " names for ", group.params.size(), " params"));
    }
    for (size_t j = 0; j < group.params.size(); ++j) {
      if (!group.params[j].defined()) {
        return absl::InvalidArgumentError(absl::StrCat("param group ", g, ": parameter ", j, " is undefined"));
      }
      if (!group.names.empty() && !seen.insert(group.names[j]).second) {
        return absl::InvalidArgumentError(absl::StrCat("duplicate parameter name \"", group.names[j], "\""));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Optimizer>> CreateOptimizer(const OptimizerOptions& options,
                                                           std::vector<ParamGroup> groups) {
  absl::Status st = Validate(options, groups);
  if (!st.ok()) return st;
  if (options.type == "adamw") return std::unique_ptr<Optimizer>(new AdamW(options, std::move(groups)));
  if (options.type == "sgd") return std::unique_ptr<Optimizer>(new Sgd(options, std::move(groups)));
  if (options.type == "lion") return std::unique_ptr<Optimizer>(new Lion(options, std::move(groups)));
  if (options.type == "lamb") return std::unique_ptr<Optimizer>(new Lamb(options, std::move(groups)));
  return absl::InvalidArgumentError(
      absl::StrCat("optimizer type \"", options.type, "\" unknown: expected adamw, sgd, lion or lamb"));
}

}  // namespace cf::optim
