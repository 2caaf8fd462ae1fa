// Options of the dynamic loss scaler (loss_scaler.h), free of LibTorch so config parsers can
// fill them. Defaults are torch.cuda.amp.GradScaler's; hysteresis and min_scale are DeepSpeed's
// (fp16.hysteresis, fp16.min_loss_scale) and, left at 1 and 0, change nothing.
#ifndef CONVFOREVER_OPTIM_LOSS_SCALER_OPTIONS_H_
#define CONVFOREVER_OPTIM_LOSS_SCALER_OPTIONS_H_

#include <cstdint>

namespace cf::optim {

struct LossScalerOptions {
  bool enabled = true;             // false: scale 1, never skips (bf16 / fp32 training)
  bool dynamic = true;             // false: the scale stays init_scale (still skips inf steps)
  double init_scale = 65536.0;     // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;  // good steps in a row before the scale grows
  int64_t hysteresis = 1;          // overflows tolerated before the scale backs off
  double min_scale = 0.0;          // floor for backoff (0: none)
};

}  // namespace cf::optim

#endif  // CONVFOREVER_OPTIM_LOSS_SCALER_OPTIONS_H_
