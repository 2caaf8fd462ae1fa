#include "convforever/distributed/zero_optimizer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>
#include <sstream>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"

namespace cf::distributed {

absl::StatusOr<std::unique_ptr<ZeroOptimizer>> ZeroOptimizer::Create(
    Communicator* comm, NamedTensors named_params, ZeroOptions options,
    const ShardUpdaterFactory& factory) {
  if (options.stage != 1 && options.stage != 2) {
    return absl::InvalidArgumentError(absl::StrCat("ZeRO stage ", options.stage,
                                                   " is not supported (1 or 2; stage 0 is plain "
                                                   "data parallel, stage 3 is not implemented)"));
  }
  std::unique_ptr<ZeroOptimizer> zero(new ZeroOptimizer(comm, options));
  for (auto& [name, param] : named_params) {
    if (!param.requires_grad()) continue;
    if (!zero->slots_.empty()) {
      const at::Tensor& first = zero->slots_.front().param;
      if (first.scalar_type() != param.scalar_type() || first.device() != param.device()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "ZeRO needs all parameters on one device with one dtype; '", name, "' is ",
            param.toString(), " but '", zero->slots_.front().name, "' is ", first.toString()));
      }
    }
    zero->slots_.push_back({name, param, zero->total_numel_});
    zero->total_numel_ += param.numel();
  }
  if (zero->slots_.empty()) return absl::InvalidArgumentError("ZeRO: no parameter requires grad");
  const int64_t world = comm->world_size();
  zero->shard_numel_ = (zero->total_numel_ + world - 1) / world;
  zero->BuildShard(factory);
  return zero;
}

void ZeroOptimizer::BuildShard(const ShardUpdaterFactory& factory) {
  at::NoGradGuard no_grad;
  const at::Tensor& first = slots_.front().param;
  at::TensorOptions state_options = first.options().requires_grad(false);
  if (options_.offload_optimizer) state_options = state_options.device(at::kCPU);
  const int64_t begin = comm_->rank() * shard_numel_;
  const int64_t end = begin + shard_numel_;
  master_ = at::zeros({shard_numel_}, state_options);
  grad_shard_ = at::zeros({shard_numel_}, state_options);
  for (const Slot& slot : slots_) {
    int64_t lo = std::max(begin, slot.offset);
    int64_t hi = std::min(end, slot.offset + slot.param.numel());
    if (lo >= hi) continue;
    at::Tensor piece = master_.narrow(0, lo - begin, hi - lo);
    piece.copy_(slot.param.detach().reshape(-1).narrow(0, lo - slot.offset, hi - lo));
    ShardParam sp{slot.name, piece.detach().requires_grad_(true), lo - slot.offset};
    shard_.push_back(std::move(sp));
  }
  updater_ = factory(shard_);
}

absl::Status ZeroOptimizer::ReduceGradients() {
  at::NoGradGuard no_grad;
  const int world = comm_->world_size();
  const at::Tensor& first = slots_.front().param;
  at::Tensor flat = at::zeros({world * shard_numel_}, first.options().requires_grad(false));
  for (const Slot& slot : slots_) {
    const at::Tensor& g = slot.param.grad();
    if (g.defined()) flat.narrow(0, slot.offset, slot.param.numel()).copy_(g.reshape(-1));
  }
  bytes_last_step_ = flat.numel() * flat.element_size();
  const int64_t begin = comm_->rank() * shard_numel_;
  if (options_.stage == 1) {
    std::vector<at::Tensor> tensors = {flat};
    RETURN_IF_ERROR(comm_->AllReduceSum(tensors, TensorKind::kGradient));
    flat.div_(world);
    grad_shard_.copy_(flat.narrow(0, begin, shard_numel_));
    for (Slot& slot : slots_) {
      at::Tensor avg = flat.narrow(0, slot.offset, slot.param.numel()).view(slot.param.sizes());
      if (slot.param.grad().defined()) {
        slot.param.mutable_grad().copy_(avg);
      } else {
        slot.param.mutable_grad() = avg.clone();
      }
    }
  } else {
    at::Tensor mine = at::empty({shard_numel_}, flat.options());
    RETURN_IF_ERROR(comm_->ReduceScatterSum(flat, mine, TensorKind::kGradient));
    grad_shard_.copy_(mine.div_(world));
    // Stage 2: the full gradients are not kept; only this rank's averaged shard lives on.
    for (Slot& slot : slots_) slot.param.mutable_grad().reset();
  }
  return absl::OkStatus();
}

absl::StatusOr<double> ZeroOptimizer::ClipGradNorm(double max_norm) {
  at::NoGradGuard no_grad;
  at::Tensor sq = grad_shard_.to(at::kDouble).pow(2).sum().reshape({1});
  sq = sq.to(slots_.front().param.device());
  std::vector<at::Tensor> tensors = {sq};
  RETURN_IF_ERROR(comm_->AllReduceSum(tensors, TensorKind::kControl));
  double norm = std::sqrt(sq.item<double>());
  if (max_norm > 0 && norm > max_norm) grad_shard_.mul_(max_norm / (norm + 1e-6));
  return norm;
}

absl::Status ZeroOptimizer::Step(double lr) {
  const int64_t begin = comm_->rank() * shard_numel_;
  for (ShardParam& sp : shard_) {
    int64_t local = 0;
    for (const Slot& slot : slots_) {
      if (slot.name == sp.name) local = slot.offset + sp.offset - begin;
    }
    sp.tensor.mutable_grad() = grad_shard_.narrow(0, local, sp.tensor.numel());
  }
  RETURN_IF_ERROR(updater_->Step(lr));
  at::NoGradGuard no_grad;
  const at::Tensor& first = slots_.front().param;
  at::Tensor full = at::empty({comm_->world_size() * shard_numel_}, first.options().requires_grad(false));
  RETURN_IF_ERROR(comm_->AllGather(master_.to(first.device()), full, TensorKind::kParameter));
  bytes_last_step_ += full.numel() * full.element_size();
  for (Slot& slot : slots_) {
    slot.param.detach().copy_(full.narrow(0, slot.offset, slot.param.numel()).view(slot.param.sizes()));
  }
  return absl::OkStatus();
}

std::string ZeroOptimizer::ShardPath(const std::string& dir, int rank, int world) const {
  return absl::StrCat(dir, "/zero_rank", rank, "_of", world, ".pt");
}

absl::Status ZeroOptimizer::SaveShard(const std::string& dir) const {
  std::string path = ShardPath(dir, comm_->rank(), comm_->world_size());
  try {
    torch::serialize::OutputArchive archive;
    archive.write("meta", at::tensor(std::vector<int64_t>{comm_->world_size(), comm_->rank(),
                                                          options_.stage, total_numel_, shard_numel_}));
    archive.write("master", master_.cpu());
    std::vector<std::string> names;
    auto state = updater_->StateDict();
    for (size_t i = 0; i < state.size(); ++i) {
      names.push_back(state[i].first);
      archive.write(absl::StrCat("state_", i), state[i].second.cpu());
    }
    archive.write("state_names", c10::IValue(absl::StrJoin(names, "\n")));
    std::ostringstream bytes;
    archive.save_to(bytes);
    return cf::base::WriteFileAtomically(path, bytes.str());
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("writing ZeRO shard ", path, ": ", e.what()));
  }
}

namespace {

// The world size the shards in `dir` were written with, or 0 when there are none.
int ShardWorldSizeIn(const std::string& dir) {
  std::error_code ec;
  static const std::regex kName(R"(zero_rank\d+_of(\d+)\.pt)");
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::smatch m;
    std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, kName)) return std::stoi(m[1]);
  }
  return 0;
}

}  // namespace

absl::Status ZeroOptimizer::LoadShard(const std::string& dir) {
  const int world = comm_->world_size();
  std::string path = ShardPath(dir, comm_->rank(), world);
  if (!std::filesystem::exists(path)) {
    int written = ShardWorldSizeIn(dir);
    if (written != 0 && written != world) {
      return absl::FailedPreconditionError(absl::StrCat(
          "ZeRO optimizer state in ", dir, " is sharded over ", written, " ranks but this run has ",
          world, ": sharded state resumes only with the same world size (relaunch with -n ",
          written, ", or start the optimizer fresh)"));
    }
    return absl::NotFoundError(absl::StrCat("ZeRO shard ", path, " does not exist"));
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    at::Tensor meta;
    archive.read("meta", meta);
    std::vector<int64_t> m(meta.data_ptr<int64_t>(), meta.data_ptr<int64_t>() + meta.numel());
    if (m.size() != 5 || m[0] != world || m[1] != comm_->rank() || m[3] != total_numel_ ||
        m[4] != shard_numel_) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " does not match this run: it holds rank ", m.size() > 1 ? m[1] : -1, " of ",
          m.empty() ? -1 : m[0], " for ", m.size() > 3 ? m[3] : -1, " parameters; this is rank ",
          comm_->rank(), " of ", world, " with ", total_numel_, " parameters"));
    }
    at::Tensor master;
    archive.read("master", master);
    c10::IValue names_value;
    archive.read("state_names", names_value);
    std::vector<std::pair<std::string, at::Tensor>> state;
    std::string joined = names_value.toStringRef();
    std::vector<std::string> names = joined.empty() ? std::vector<std::string>{}
                                                    : absl::StrSplit(joined, '\n');
    for (size_t i = 0; i < names.size(); ++i) {
      at::Tensor t;
      archive.read(absl::StrCat("state_", i), t);
      state.emplace_back(names[i], t);
    }
    at::NoGradGuard no_grad;
    master_.copy_(master);
    absl::Status s = updater_->LoadStateDict(state);
    if (!s.ok()) return absl::DataLossError(absl::StrCat(path, ": ", s.message()));
  } catch (const std::exception& e) {
    std::string what = e.what();
    return absl::DataLossError(absl::StrCat("reading ZeRO shard ", path, ": ", what.substr(0, what.find('\n'))));
  }
  return absl::OkStatus();
}

}  // namespace cf::distributed
