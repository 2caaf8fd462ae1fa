#include "convforever/train/empty_step.h"

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"

namespace cf::train {

absl::Status ZeroGradientPass(models::Model& model, const c10::Device& device, int64_t channels,
                              int64_t image_size) {
  const bool was_training = model.is_training();
  try {
    model.train(false);
    at::Tensor x = at::zeros({1, channels, image_size, image_size}, at::TensorOptions().device(device));
    at::Tensor out = model.forward(x);
    (out.sum() * 0.0).backward();
    model.train(was_training);
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    model.train(was_training);
    return absl::InternalError(absl::StrCat("zero-gradient pass for an empty micro-batch failed: ",
                                            e.what_without_backtrace()));
  }
}

}  // namespace cf::train
