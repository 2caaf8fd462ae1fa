// Calibration of the estimator (estimate_mode.h) on this machine: the trainer's own training
// step and evaluation forward pass, timed on a built run (RunSetup).
//
// A training step is Trainer::RunOneStep's work: for each of gradient_accumulation_steps micro-
// batches, forward under the precision's autocast + loss + (scaled) backward, then RunSetup::
// ApplyGradients (clip, optimizer step, EMA, loss scaler). Batches come from the training loader
// when `real_data` (its workers share the cores as in training, and decoding is in the time),
// otherwise from one synthetic micro-batch of the recipe's shape. `warmup_steps` untimed steps,
// then the median of `steps` timed ones (CUDA synchronised). Evaluation: forward without grad in
// eval mode on a micro-batch, median per image. The device's peak: on the CPU a 1024^3 fp32
// matmul with the trainer's thread count (plan/measure.h), on CUDA the datasheet row `cuda_gpu`.
// The run's model is trained by these steps: use a run built for the estimate only.
#ifndef CONVFOREVER_TRAIN_CALIBRATE_H_
#define CONVFOREVER_TRAIN_CALIBRATE_H_

#include <string>

#include "absl/status/statusor.h"
#include "convforever/plan/gpus.h"
#include "convforever/train/run_setup.h"

namespace cf::train {

struct CalibrationOptions {
  int steps = 5;
  int warmup_steps = 2;
  bool real_data = true;
  double train_flops_per_image = 0;       // model FLOPs of one training image (plan/estimate.h)
  const plan::GpuSpec* cuda_gpu = nullptr;  // --device=cuda: this GPU's table row (required)
};

struct Calibration {
  double step_seconds = 0;            // one optimizer step (all micro-batches)
  double eval_seconds_per_image = 0;
  double achieved_flops = 0;          // model FLOP/s while training
  double device_peak_flops = 0;
  double utilization = 0;             // achieved / peak
  std::string device_peak_source;
};

absl::StatusOr<Calibration> Calibrate(RunSetup& run, const CalibrationOptions& options);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_CALIBRATE_H_
