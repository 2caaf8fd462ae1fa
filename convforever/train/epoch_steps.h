// Optimizer steps per epoch when epochs differ in length: progressive resizing with per-stage
// batch sizes (--progressive_resize=0:64:128,2:96:64) gives each stage's epochs their own batch
// count, so the run's length is the sum over its epochs, and anything given in epochs (warmup,
// step decay) lands on the cumulative step at that epoch. Epoch e has steps[e] = its batches per
// rank / the accumulation steps (the remainder is dropped, as the trainer's loop does). A
// fractional epoch count trains that fraction of the last epoch's steps, rounded up (as
// ceil(epochs x steps_per_epoch) does when all epochs are alike). Pure; thread-safe.
#ifndef CONVFOREVER_TRAIN_EPOCH_STEPS_H_
#define CONVFOREVER_TRAIN_EPOCH_STEPS_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"

namespace cf::train {

class EpochSteps {
 public:
  // `batches_in_epoch(e)` for e in [0, ceil(epochs)) (at least one epoch), divided by
  // `accumulation`. An epoch with fewer batches than `accumulation` is an error naming it.
  static absl::StatusOr<EpochSteps> Count(double epochs, int64_t accumulation,
                                          const std::function<int64_t(int64_t)>& batches_in_epoch);
  explicit EpochSteps(std::vector<int64_t> steps, double epochs);

  int64_t steps_in_epoch(int64_t epoch) const;  // past the counted epochs: the last one's
  // Steps of the whole run (`epochs` epochs).
  int64_t total() const { return StepAtEpoch(epochs_, /*round_up=*/true); }
  // The step at which epoch `epoch` (fractional: that part of the epoch) begins, rounded to the
  // nearest step; epochs past the counted ones continue at the last one's length.
  int64_t StepAtEpoch(double epoch, bool round_up = false) const;
  // Whether all counted epochs have the same number of steps.
  bool uniform() const;

 private:
  std::vector<int64_t> steps_;
  double epochs_;
};

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_EPOCH_STEPS_H_
