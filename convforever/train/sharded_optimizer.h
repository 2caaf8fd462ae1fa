// The trainer's own optimizer (optim::CreateOptimizer: AdamW, SGD, Lion) running on one rank's
// ZeRO shard (distributed::ZeroOptimizer, Rajbhandari et al. 2020), so that ZeRO keeps the trainer's
// param-group rules: no weight decay for norms/biases and layer-wise lr decay are decided from
// the FULL parameter (its name and rank, via optim::MakeParamGroups on the model), never from the
// 1-D shard pieces, which would all look like biases.
//
// State: ShardUpdater::StateDict() is Optimizer::SaveState's "<param>/<slot>" tensors (each [n],
// this rank's elements of the parameter) plus the meta JSON (per-parameter step counts, which
// Adam's bias correction needs) as a uint8 tensor named kMetaTensorName. LoadUnshardedState()
// takes an unsharded checkpoint's full optimizer state and keeps this rank's elements, so a
// plain data-parallel or single-process run can resume under ZeRO.
//
// LAMB is refused: its trust ratio needs whole-tensor norms, which a shard piece does not have.
// Not thread-safe (the training thread owns it, like the ZeroOptimizer).
#ifndef CONVFOREVER_TRAIN_SHARDED_OPTIMIZER_H_
#define CONVFOREVER_TRAIN_SHARDED_OPTIMIZER_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/shard_updater.h"
#include "convforever/distributed/zero_optimizer.h"
#include "convforever/optim/optimizer.h"
#include "convforever/optim/param_groups.h"
#include "nlohmann/json.hpp"

namespace cf::train {

class OptimizerShardUpdater : public distributed::ShardUpdater {
 public:
  // The reserved state name of the optimizer's meta JSON.
  static constexpr char kMetaTensorName[] = "__optimizer_meta_json__";

  // `full_groups` are the model's groups (names of full parameters); the shard pieces join the
  // group of the parameter they come from. Errors: a piece of a parameter in no group, LAMB, or
  // what CreateOptimizer rejects.
  static absl::StatusOr<std::unique_ptr<OptimizerShardUpdater>> Create(
      const std::vector<distributed::ShardParam>& shard, const std::vector<optim::ParamGroup>& full_groups,
      const optim::OptimizerOptions& options);

  absl::Status Step(double lr) override;
  std::vector<std::pair<std::string, at::Tensor>> StateDict() const override;
  absl::Status LoadStateDict(const std::vector<std::pair<std::string, at::Tensor>>& state) override;

  // An unsharded optimizer state (optimizer.safetensors + its meta): each "<param>/<slot>" is
  // flattened and cut to this rank's elements; pieces of other ranks are skipped. Names of
  // parameters the model does not have, or of another size, are errors.
  absl::Status LoadUnshardedState(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                  const nlohmann::json& meta);

  const optim::Optimizer& optimizer() const { return *optimizer_; }

 private:
  OptimizerShardUpdater(std::vector<distributed::ShardParam> shard, std::map<std::string, int64_t> full_numel,
                        std::unique_ptr<optim::Optimizer> optimizer)
      : shard_(std::move(shard)), full_numel_(std::move(full_numel)), optimizer_(std::move(optimizer)) {}

  std::vector<distributed::ShardParam> shard_;
  std::map<std::string, int64_t> full_numel_;  // every trainable parameter of the model
  std::unique_ptr<optim::Optimizer> optimizer_;
};

// The ZeroOptimizer of a run: `named_params` are the model's (the trainable ones are sharded),
// `full_groups` MakeParamGroups of them. `*updater` is set to the shard's updater, owned by the
// returned ZeroOptimizer.
absl::StatusOr<std::unique_ptr<distributed::ZeroOptimizer>> CreateShardedOptimizer(
    distributed::Communicator* comm, const std::vector<std::pair<std::string, at::Tensor>>& named_params,
    const std::vector<optim::ParamGroup>& full_groups, const optim::OptimizerOptions& options,
    distributed::ZeroOptions zero_options, OptimizerShardUpdater** updater);

// Copies the model's current parameter values into the shard's master copy (after weights were
// loaded into the model from a checkpoint), so the next Step starts from them.
absl::Status CopyParamsIntoShard(const std::vector<std::pair<std::string, at::Tensor>>& named_params,
                                 const distributed::ZeroOptimizer& zero);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_SHARDED_OPTIMIZER_H_
