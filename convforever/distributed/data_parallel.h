// Data-parallel gradient synchronisation: bucketed all-reduce launched from autograd hooks so that
// communication overlaps the rest of backward (the design of PyTorch DDP's Reducer, Li et al.,
// "PyTorch Distributed: Experiences on Accelerating Data Parallel Training", VLDB 2020).
//
// Parameters (those that require grad) are packed into buckets of ~`bucket_cap_mb` in *reverse*
// registration order, since backward produces the last layers' gradients first; the first bucket
// is capped at `first_bucket_cap_mb` so that its all-reduce starts early in backward. As each
// gradient is accumulated into `.grad`, it is written, already divided by world_size, into its
// slot of the bucket's flat buffer (one pass, no separate division), and `.grad` becomes that slot
// (a view with the parameter's strides, as PyTorch's gradient_as_bucket_view; autograd's own
// tensor is freed at once). When a bucket is complete its all-reduce (a sum) starts. Buckets
// start strictly in index order so that all ranks issue the same collectives in the same order.
// FinishGradientSync() waits for all buckets, after which the slots, i.e. the `.grad`s, hold the
// means: nothing is copied back. Parameters that got no gradient this step contribute zeros (and
// receive the average of the others).
//
// Between a synchronised backward and FinishGradientSync() `.grad` is in flight: read it only
// after. Because it aliases the bucket, the next synchronised backward overwrites it: reset the
// gradients (optimizer ZeroGrad) or let backward accumulate into them in place, but do not keep
// a step's `.grad` past the next step without copying it.
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
  // Cap of the first bucket (the last layers' gradients, ready first): PyTorch DDP's default of
  // 1 MiB (torch.distributed._DEFAULT_FIRST_BUCKET_BYTES). At most bucket_cap_mb; <= 0: the same.
  double first_bucket_cap_mb = 1.0;
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
  // Waits for every bucket; afterwards each `.grad` holds the mean over ranks (as a view into the
  // bucket, see above). A no-op returning OK when sync is off for this step.
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
    bool ready = false;  // gradient written into the bucket this step
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
  // Slot `s` of its bucket, shaped (and strided, when dense) like the parameter.
  at::Tensor BucketView(int s) const;
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
