// The extension point of DataParallel's gradient synchronisation: how one bucket's flat gradient
// buffer is reduced across ranks. Without a reducer DataParallel all-reduces each bucket (a sum,
// TensorKind::kGradient); a GradientReducer replaces that all-reduce, e.g. with PowerSGD's
// low-rank compression (powersgd.h).
//
// Contract:
//   * SetBuckets() is called once, from DataParallel's constructor, with every bucket's layout
//     (bucket i's tensors in packing order; offsets in elements into its flat buffer).
//   * ReduceAsync(i, flat) is called once per synchronised step for every bucket, in bucket
//     index order, identically on every rank, from the thread that issues collectives (the
//     autograd hooks' or FinishGradientSync's; never two at once). `flat` is [sum of numel],
//     contiguous, holding this rank's gradients already divided by the world size (DataParallel
//     scales them as it copies them in). Once the returned work has been waited, `flat` must
//     hold the sum over ranks of those, i.e. the mean gradient, or the reducer's estimate of it,
//     exactly as the plain all-reduce leaves it; the parameters' .grad are views into `flat`. The work's Wait() may issue
//     further collectives; DataParallel waits the buckets in index order on every rank, after
//     every bucket was launched, so all ranks issue them in the same order.
//   * Every collective goes through the Communicator, with the TensorKind of what it carries.
#ifndef CONVFOREVER_DISTRIBUTED_GRADIENT_REDUCER_H_
#define CONVFOREVER_DISTRIBUTED_GRADIENT_REDUCER_H_

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "convforever/distributed/communicator.h"

namespace cf::distributed {

// One parameter's gradient inside a bucket's flat buffer.
struct BucketTensor {
  std::string name;
  int64_t offset = 0;          // elements into the bucket's flat buffer
  std::vector<int64_t> shape;  // the parameter's shape; numel = product
};
using BucketLayout = std::vector<BucketTensor>;

class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  virtual void SetBuckets(const std::vector<BucketLayout>& buckets) = 0;
  virtual AsyncWork ReduceAsync(int bucket, at::Tensor flat) = 0;
};

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_GRADIENT_REDUCER_H_
