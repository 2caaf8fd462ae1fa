// Evaluation: mean loss, top-1 and top-5 accuracy of a model over one pass of a loader.
//
// Runs under NoGradGuard, with the model in eval mode (restored afterwards), optionally under
// autocast. Every sample of the loader's epoch counts exactly once (the eval loader must not drop
// or pad), so the figures are exact for the data set; with several ranks each evaluates its own
// part (an unpadded shard) and SumOverRanks adds the counts up.
#ifndef CONVFOREVER_TRAIN_EVALUATE_H_
#define CONVFOREVER_TRAIN_EVALUATE_H_

#include <string>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "convforever/data/loader.h"
#include "convforever/distributed/communicator.h"
#include "convforever/models/model.h"
#include "convforever/train/trainer.h"

namespace cf::train {

struct EvalCounts {
  double loss_sum = 0;  // sum over samples of the per-sample loss
  int64_t top1 = 0;
  int64_t top5 = 0;
  int64_t samples = 0;
  EvalResult ToResult() const;
};

struct EvaluateOptions {
  c10::Device device = c10::Device(c10::kCPU);
  std::string precision = "fp32";  // fp32|bf16|fp16 (autocast)
  bool channels_last = false;
  int64_t epoch = 0;               // which epoch of the loader to run (eval loaders don't shuffle)
};

absl::StatusOr<EvalCounts> EvaluateModel(models::Model& model, data::Loader& loader,
                                         const EvaluateOptions& options);

// Each rank's counts of its part of the eval set summed over ranks in one collective of control
// scalars (every rank gets the same sums, those of a one-rank evaluation). `comm` null: `counts`.
absl::StatusOr<EvalCounts> SumOverRanks(const EvalCounts& counts, distributed::Communicator* comm);

// Seconds of one evaluation forward pass of a batch of `batch` images [batch, channels, size, size]
// (zeros, in `options`' precision and memory format; the mean of 2 timed passes after 1 untimed),
// for the --time_budget plan. The model is in eval mode meanwhile (restored after); no gradient,
// no random number is drawn, so the run's state is unchanged.
absl::StatusOr<double> TimeEvalForward(models::Model& model, const EvaluateOptions& options,
                                       int64_t batch, int64_t channels, int64_t size);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_EVALUATE_H_
