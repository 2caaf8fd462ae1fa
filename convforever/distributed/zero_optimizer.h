// ZeRO stage 1 and 2 (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion
// Parameter Models", SC 2020; DeepSpeed's `zero_optimization.stage`): every rank keeps the full
// model, but the optimizer state (stage 1) and also the reduced gradients (stage 2) exist only
// for this rank's shard.
//
// Layout: the parameters that require grad, flattened in registration order and concatenated,
// N elements, padded to world_size * S; rank r owns elements [r*S, (r+1)*S). The shard is held
// as an fp32-or-param-dtype master copy (on the CPU with `offload_optimizer`), split at parameter
// boundaries into ShardParams handed to the ShardUpdaterFactory once.
//
// Per optimizer step (the trainer's contract; no DataParallel needed, grads are local sums):
//   loss.backward() on each micro-step (no communication: .grad accumulates locally)
//   RETURN_IF_ERROR(zero->ReduceGradients());   // stage 1: all-reduce, keep the shard;
//                                               // stage 2: reduce-scatter, .grad released
//   ASSIGN_OR_RETURN(double norm, zero->ClipGradNorm(max_norm));   // global norm, optional clip
//   RETURN_IF_ERROR(zero->Step(lr));            // shard update, then all-gather parameters
// Stage 1 also writes the averaged gradients back into `.grad`; stage 2 resets `.grad`.
// Sharded state: SaveShard(dir) writes `zero_rank<r>_of<W>.pt` per rank; LoadShard(dir) needs
// the same world size and says so clearly otherwise. Not thread-safe.
#ifndef CONVFOREVER_DISTRIBUTED_ZERO_OPTIMIZER_H_
#define CONVFOREVER_DISTRIBUTED_ZERO_OPTIMIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/data_parallel.h"
#include "convforever/distributed/shard_updater.h"
#include "convforever/distributed/zero_options.h"

namespace cf::distributed {

class ZeroOptimizer {
 public:
  static absl::StatusOr<std::unique_ptr<ZeroOptimizer>> Create(Communicator* comm,
                                                               NamedTensors named_params,
                                                               ZeroOptions options,
                                                               const ShardUpdaterFactory& factory);

  absl::Status ReduceGradients();
  // Global L2 norm of the averaged gradient; when max_norm > 0 and the norm exceeds it, the
  // shard's gradient is scaled by max_norm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_.
  absl::StatusOr<double> ClipGradNorm(double max_norm);
  // `lr` < 0 keeps the updater's configured rate.
  absl::Status Step(double lr = -1.0);

  absl::Status SaveShard(const std::string& dir) const;
  absl::Status LoadShard(const std::string& dir);

  int64_t total_numel() const { return total_numel_; }
  int64_t shard_numel() const { return shard_numel_; }
  const std::vector<ShardParam>& shard() const { return shard_; }
  int64_t bytes_communicated_last_step() const { return bytes_last_step_; }
  ShardUpdater& updater() { return *updater_; }

 private:
  struct Slot {
    std::string name;
    at::Tensor param;
    int64_t offset = 0;  // into the flat layout
  };
  ZeroOptimizer(Communicator* comm, ZeroOptions options) : comm_(comm), options_(options) {}
  void BuildShard(const ShardUpdaterFactory& factory);
  std::string ShardPath(const std::string& dir, int rank, int world) const;

  Communicator* comm_;
  ZeroOptions options_;
  std::vector<Slot> slots_;
  int64_t total_numel_ = 0;
  int64_t shard_numel_ = 0;
  at::Tensor master_;       // [S] this rank's parameters (state device)
  at::Tensor grad_shard_;   // [S] averaged gradient (state device)
  std::vector<ShardParam> shard_;
  std::unique_ptr<ShardUpdater> updater_;
  int64_t bytes_last_step_ = 0;
};

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_ZERO_OPTIMIZER_H_
