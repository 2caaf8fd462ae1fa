#include "convforever/train/sharded_optimizer.h"

#include <cstring>
#include <optional>
#include <set>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "glog/logging.h"

namespace cf::train {
namespace {

at::Tensor StringTensor(const std::string& text) {
  at::Tensor t = at::empty({static_cast<int64_t>(text.size())}, at::kByte);
  if (!text.empty()) std::memcpy(t.data_ptr<uint8_t>(), text.data(), text.size());
  return t;
}

std::string TensorString(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU).to(at::kByte).contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), c.numel());
}

}  // namespace

absl::StatusOr<std::unique_ptr<OptimizerShardUpdater>> OptimizerShardUpdater::Create(
    const std::vector<distributed::ShardParam>& shard, const std::vector<optim::ParamGroup>& full_groups,
    const optim::OptimizerOptions& options) {
  if (options.type == "lamb") {
    return absl::InvalidArgumentError(
        "LAMB cannot run under ZeRO: its trust ratio needs whole-tensor norms and a ZeRO shard "
        "holds pieces of tensors (use adamw, sgd or lion, or --zero_stage=0)");
  }
  std::map<std::string, size_t> group_of;
  std::map<std::string, int64_t> full_numel;
  for (size_t g = 0; g < full_groups.size(); ++g) {
    for (size_t j = 0; j < full_groups[g].names.size(); ++j) {
      group_of[full_groups[g].names[j]] = g;
      full_numel[full_groups[g].names[j]] = full_groups[g].params[j].numel();
    }
  }
  std::vector<optim::ParamGroup> groups(full_groups.size());
  for (size_t g = 0; g < full_groups.size(); ++g) {
    groups[g].weight_decay = full_groups[g].weight_decay;
    groups[g].lr_scale = full_groups[g].lr_scale;
  }
  for (const distributed::ShardParam& piece : shard) {
    auto it = group_of.find(piece.name);
    if (it == group_of.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ZeRO shard holds parameter '", piece.name, "', which no optimizer param group has"));
    }
    groups[it->second].names.push_back(piece.name);
    groups[it->second].params.push_back(piece.tensor);
  }
  std::vector<optim::ParamGroup> nonempty;
  for (optim::ParamGroup& g : groups) {
    if (!g.params.empty()) nonempty.push_back(std::move(g));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<optim::Optimizer> optimizer,
                   optim::CreateOptimizer(options, std::move(nonempty)));
  return std::unique_ptr<OptimizerShardUpdater>(
      new OptimizerShardUpdater(shard, std::move(full_numel), std::move(optimizer)));
}

absl::Status OptimizerShardUpdater::Step(double lr) {
  try {
    optimizer_->Step(lr >= 0 ? lr : optimizer_->options().lr);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("ZeRO shard optimizer step: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, at::Tensor>> OptimizerShardUpdater::StateDict() const {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  nlohmann::json meta;
  if (absl::Status s = optimizer_->SaveState(&tensors, &meta); !s.ok()) {
    // No status to return here: without the meta entry, LoadStateDict reports the loss.
    LOG(ERROR) << "ZeRO shard optimizer state: " << s;
    return {};
  }
  tensors.emplace_back(kMetaTensorName, StringTensor(meta.dump()));
  return tensors;
}

absl::Status OptimizerShardUpdater::LoadStateDict(
    const std::vector<std::pair<std::string, at::Tensor>>& state) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::optional<nlohmann::json> meta;
  for (const auto& [name, t] : state) {
    if (name != kMetaTensorName) {
      tensors.emplace_back(name, t);
      continue;
    }
    meta = nlohmann::json::parse(TensorString(t), nullptr, /*allow_exceptions=*/false);
    if (meta->is_discarded()) return absl::DataLossError("optimizer meta in the shard is not JSON");
  }
  if (!meta) {
    return absl::DataLossError(absl::StrCat("the shard has no optimizer meta (", kMetaTensorName,
                                            "): not written by this trainer's ZeRO path"));
  }
  return optimizer_->LoadState(tensors, *meta);
}

absl::Status OptimizerShardUpdater::LoadUnshardedState(
    const std::vector<std::pair<std::string, at::Tensor>>& tensors, const nlohmann::json& meta) {
  std::map<std::string, const distributed::ShardParam*> mine;
  for (const distributed::ShardParam& piece : shard_) mine[piece.name] = &piece;
  std::vector<std::pair<std::string, at::Tensor>> sliced;
  for (const auto& [key, t] : tensors) {
    const size_t slash = key.rfind('/');
    const std::string param = slash == std::string::npos ? key : key.substr(0, slash);
    auto full = full_numel_.find(param);
    if (full == full_numel_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer state: tensor \"", key,
                                                     "\" is of no parameter of this model"));
    }
    if (t.numel() != full->second) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer state: tensor \"", key, "\" has ",
                                                     t.numel(), " elements, the parameter has ",
                                                     full->second));
    }
    auto piece = mine.find(param);
    if (piece == mine.end()) continue;  // another rank's elements
    const distributed::ShardParam& p = *piece->second;
    sliced.emplace_back(key, t.reshape({-1}).narrow(0, p.offset, p.tensor.numel()).clone());
  }
  nlohmann::json shard_meta = meta;
  if (meta.is_object() && meta.contains("steps") && meta["steps"].is_object()) {
    nlohmann::json steps = nlohmann::json::object();
    for (const auto& [name, n] : meta["steps"].items()) {
      if (!full_numel_.count(name)) {
        return absl::InvalidArgumentError(absl::StrCat("optimizer state: step count of \"", name,
                                                       "\", a parameter this model does not have"));
      }
      if (mine.count(name)) steps[name] = n;
    }
    shard_meta["steps"] = steps;
  }
  return optimizer_->LoadState(sliced, shard_meta);
}

absl::StatusOr<std::unique_ptr<distributed::ZeroOptimizer>> CreateShardedOptimizer(
    distributed::Communicator* comm, const std::vector<std::pair<std::string, at::Tensor>>& named_params,
    const std::vector<optim::ParamGroup>& full_groups, const optim::OptimizerOptions& options,
    distributed::ZeroOptions zero_options, OptimizerShardUpdater** updater) {
  absl::Status factory_status;
  OptimizerShardUpdater* created = nullptr;
  // The factory cannot return a status: it keeps it aside, and a failed one is reported below.
  distributed::ShardUpdaterFactory factory =
      [&](const std::vector<distributed::ShardParam>& shard) -> std::unique_ptr<distributed::ShardUpdater> {
    absl::StatusOr<std::unique_ptr<OptimizerShardUpdater>> u =
        OptimizerShardUpdater::Create(shard, full_groups, options);
    if (!u.ok()) {
      factory_status = u.status();
      return nullptr;
    }
    created = u->get();
    return std::move(*u);
  };
  absl::StatusOr<std::unique_ptr<distributed::ZeroOptimizer>> zero;
  try {
    zero = distributed::ZeroOptimizer::Create(comm, named_params, zero_options, factory);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("building the ZeRO shard: ", e.what_without_backtrace()));
  }
  RETURN_IF_ERROR(factory_status);
  RETURN_IF_ERROR(zero.status());
  *updater = created;
  return zero;
}

absl::Status CopyParamsIntoShard(const std::vector<std::pair<std::string, at::Tensor>>& named_params,
                                 const distributed::ZeroOptimizer& zero) {
  std::map<std::string, at::Tensor> by_name(named_params.begin(), named_params.end());
  at::NoGradGuard no_grad;
  for (const distributed::ShardParam& piece : zero.shard()) {
    auto it = by_name.find(piece.name);
    if (it == by_name.end()) {
      return absl::InternalError(absl::StrCat("ZeRO shard parameter '", piece.name, "' is not in the model"));
    }
    at::Tensor source = it->second.detach().reshape({-1}).narrow(0, piece.offset, piece.tensor.numel());
    at::Tensor target = piece.tensor;  // a view of the master copy
    target.detach().copy_(source);
  }
  return absl::OkStatus();
}

}  // namespace cf::train
