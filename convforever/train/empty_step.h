// A micro-batch with no samples (the loader's empty batch: every sample of it failed to read or
// decode) still takes part in its optimizer step, so that every rank runs the same steps and
// meets the others in the same collectives. ZeroGradientPass runs the model forward on one zero
// image [1, C, H, W] in eval mode (BatchNorm statistics, dropout and drop path untouched) and
// backward from 0 x the output: every parameter receives a zero gradient, the gradient hooks of
// data parallel, ZeRO and PowerSGD run their collectives as usual, and this rank adds nothing to
// the step's mean gradient (the others' gradients are averaged over all ranks as always, so the
// step is that much smaller, as a short batch's is). Training mode is restored. Same thread
// rules as the model's forward/backward.
#ifndef CONVFOREVER_TRAIN_EMPTY_STEP_H_
#define CONVFOREVER_TRAIN_EMPTY_STEP_H_

#include <cstdint>

#include <c10/core/Device.h>

#include "absl/status/status.h"
#include "convforever/models/model.h"

namespace cf::train {

absl::Status ZeroGradientPass(models::Model& model, const c10::Device& device, int64_t channels,
                              int64_t image_size);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_EMPTY_STEP_H_
