// The per-shard update step ZeroOptimizer delegates to, so the trainer can plug in its own
// optimizer (AdamW with its param-group rules) without cf::distributed knowing it.
//
// A ShardParam is this rank's piece of one model parameter: a 1-D leaf tensor (`tensor`,
// requires_grad) holding elements [offset, offset + numel) of the flattened parameter `name`.
// Before each Step() the ZeroOptimizer sets `tensor.grad()` to the averaged gradient of exactly
// those elements; Step() must update `tensor` in place from it (under no-grad). Per-parameter
// choices (no weight decay on norms and biases, ...) can key on `name`.
// Elementwise optimizers (SGD, Adam/AdamW, Lion) are exact under this split; optimizers that need
// whole-tensor statistics (LAMB's trust ratio) are not, and must not be used through ZeRO.
#ifndef CONVFOREVER_DISTRIBUTED_SHARD_UPDATER_H_
#define CONVFOREVER_DISTRIBUTED_SHARD_UPDATER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"

namespace cf::distributed {

struct ShardParam {
  std::string name;   // the model parameter's name
  at::Tensor tensor;  // [numel], this rank's elements of it (optimizer-state device)
  int64_t offset = 0;  // first element, in the flattened parameter
};

class ShardUpdater {
 public:
  virtual ~ShardUpdater() = default;
  // One optimizer step on the shard (grads already set). `lr` < 0 keeps the configured rate.
  virtual absl::Status Step(double lr = -1.0) = 0;
  // Optimizer state, by stable names; what SaveShard/LoadShard persist.
  virtual std::vector<std::pair<std::string, at::Tensor>> StateDict() const = 0;
  virtual absl::Status LoadStateDict(const std::vector<std::pair<std::string, at::Tensor>>& state) = 0;
};

using ShardUpdaterFactory =
    std::function<std::unique_ptr<ShardUpdater>(const std::vector<ShardParam>& shard)>;

// Reference updaters (tests, benchmarks, and a trainer without its own optimizer).
// SGD with momentum and (coupled) L2 weight decay, as torch.optim.SGD:
//   g += wd * p; buf = momentum * buf + g (buf = g on the first step); p -= lr * buf.
struct SgdOptions {
  double lr = 0.1;
  double momentum = 0.0;
  double weight_decay = 0.0;
};
// AdamW, Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (ICLR 2019), as
// torch.optim.AdamW: p *= 1 - lr*wd; m,v moments with bias correction; p -= lr*m̂/(sqrt(v̂)+eps).
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};
std::unique_ptr<ShardUpdater> MakeSgdUpdater(const std::vector<ShardParam>& shard, SgdOptions o);
std::unique_ptr<ShardUpdater> MakeAdamWUpdater(const std::vector<ShardParam>& shard, AdamWOptions o);

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_SHARD_UPDATER_H_
