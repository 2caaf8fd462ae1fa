// Dynamic loss scaling for fp16 training (Micikevicius et al. 2018, "Mixed Precision Training"),
// with torch.cuda.amp.GradScaler's rules: the loss is multiplied by `scale` before backward;
// before the optimizer step the gradients are divided by it and checked for inf/NaN; a step with
// inf/NaN is skipped (and counted) and the scale backs off (x backoff_factor); after
// growth_interval good steps in a row it grows (x growth_factor). The scale is kept in float32 as
// GradScaler keeps it, so the sequences match exactly.
// Per iteration: loss = scaler.Scale(loss); backward; [scaler.Unscale(params); clip;]
// scaler.Step(optimizer, lr); scaler.Update().
// Gradients may be on any one device (CUDA uses the fused _amp_foreach_non_finite_check_and_
// unscale_ kernel). Not thread-safe.
#ifndef CONVFOREVER_OPTIM_LOSS_SCALER_H_
#define CONVFOREVER_OPTIM_LOSS_SCALER_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "convforever/optim/loss_scaler_options.h"
#include "convforever/optim/optimizer.h"
#include "nlohmann/json.hpp"

namespace cf::optim {

class LossScaler {
 public:
  explicit LossScaler(LossScalerOptions options);

  // loss * scale (unchanged when disabled).
  at::Tensor Scale(const at::Tensor& loss) const;
  // Divides the gradients of `params` by the scale in place, once per iteration (later calls
  // return the first answer); returns whether any was inf/NaN.
  bool Unscale(const std::vector<at::Tensor>& params);
  // Unscales if not done yet, then steps the optimizer unless inf/NaN was found. Returns true
  // when the optimizer stepped.
  bool Step(Optimizer& optimizer, double lr);
  // Adjusts the scale from this iteration's finding and starts the next iteration.
  void Update();
  // The same with an explicit finding (for callers that check overflow themselves).
  void Update(bool found_inf);

  double scale() const { return options_.enabled ? static_cast<double>(scale_) : 1.0; }
  int64_t growth_tracker() const { return growth_tracker_; }
  int64_t skipped_steps() const { return skipped_; }
  bool enabled() const { return options_.enabled; }

  // {"scale", "growth_tracker", "hysteresis_left", "skipped_steps"}; LoadState names a missing or
  // invalid key.
  nlohmann::json SaveState() const;
  absl::Status LoadState(const nlohmann::json& state);

 private:
  LossScalerOptions options_;
  float scale_;
  int64_t growth_tracker_ = 0;
  int64_t hysteresis_left_;
  int64_t skipped_ = 0;
  bool unscaled_ = false;
  bool found_inf_ = false;
};

}  // namespace cf::optim

#endif  // CONVFOREVER_OPTIM_LOSS_SCALER_H_
