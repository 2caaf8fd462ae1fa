// Data-parallel gradient synchronisation: bucketed all-reduce launched from autograd hooks so that
// communication overlaps the rest of backward (the design of PyTorch DDP's Reducer, Li et al.,
// "PyTorch Distributed: Experiences on Accelerating Data Parallel Training", VLDB 2020).
//
// Parameters (those that require grad) are packed into buckets of ~`bucket_cap_mb` in *reverse*
// registration order, since backward produces the last layers' gradients first. When every
// gradient of a bucket has been accumulated into `.grad`, the bucket is copied into a flat buffer
// and its all-reduce starts; buckets start strictly in index order so that all ranks issue the
// same collectives in the same order. FinishGradientSync() waits for all buckets and writes the
// averaged gradients (sum / world_size) back into `.grad`. Parameters that got no gradient this
// step contribute zeros (and receive the average of the others).
//
// Per step (the trainer's contract):
//   dp.SetSyncThisStep(is_last_micro_step);   // no communication on the other micro-steps
//   loss.backward();                           // hooks launch bucket all-reduces
//   if (is_last_micro_step) RETURN_IF_ERROR(dp.FinishGradientSync());  // then clip, step
// The parameters must outlive the DataParallel; .grad tensors may be replaced between steps.
// Not thread-safe across calls; hooks may run on autograd's device threads (guarded inside).
#ifndef CONVFOREVER_DISTRIBUTED_DATA_PARALLEL_H_
#define CONVFOREVER_DISTRIBUTED_DATA_PARALLEL_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/grad_hooks.h"
#include "convforever/distributed/gradient_reducer.h"

namespace torch::nn {
class Module;
}

namespace cf::distributed {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct DataParallelOptions {
  double bucket_cap_mb = 25.0;
  // false: no hooks; FinishGradientSync() all-reduces every bucket after backward (the
  // no-overlap baseline of the benchmark; with a huge bucket_cap_mb, one single all-reduce).
  bool overlap = true;
  // Replaces each bucket's plain all-reduce (gradient_reducer.h), e.g. PowerSGD (powersgd.h);
  // null = the plain all-reduce. Launched at the same moments, so overlap is unchanged.
  std::shared_ptr<GradientReducer> reducer;
};

class DataParallel {
 public:
  DataParallel(Communicator* comm, NamedTensors named_params, DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Overwrites every parameter and buffer of `module` with rank 0's (call once after building
  // the model and before the first step, and after loading a checkpoint on rank 0 only).
  absl::Status BroadcastParameters(torch::nn::Module& module);
  absl::Status BroadcastTensors(std::vector<at::Tensor> tensors);

  void SetSyncThisStep(bool sync);
  // Waits for every bucket; afterwards each `.grad` holds the mean over ranks. A no-op returning
  // OK when sync is off for this step.
  absl::Status FinishGradientSync();

  int64_t bytes_reduced_last_step() const { return bytes_reduced_last_step_; }
  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  // Names of the parameters in bucket `i`, in packing order.
  std::vector<std::string> bucket_parameter_names(int i) const;

 private:
  struct Slot {
    std::string name;
    at::Tensor param;
    int bucket = 0;
    int64_t offset = 0;  // elements into the bucket's flat buffer
    bool ready = false;  // gradient copied into the bucket this step
  };
  struct Bucket {
    std::vector<int> slots;
    at::Tensor flat;  // [sum of numel], the parameters' dtype and device
    int pending = 0;
    bool launched = false;
    AsyncWork work;
  };

  void OnGradAccumulated(int slot);
  void CopyIntoBucket(int slot);
  void LaunchReadyBuckets();
  void ResetStep();

  Communicator* comm_;
  DataParallelOptions options_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  std::vector<std::unique_ptr<GradAccumulatedHook>> hooks_;
  std::mutex mu_;
  bool sync_ = true;
  int next_to_launch_ = 0;
  int64_t bytes_this_step_ = 0;
  int64_t bytes_reduced_last_step_ = 0;
};

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_DATA_PARALLEL_H_
