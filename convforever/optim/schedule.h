// Learning-rate schedules as pure functions of the optimizer step (0-based: LearningRate(o, 0) is
// the lr of the first update). The trainer owns the step counter, so resuming needs no scheduler
// state. Types (all but onecycle / ds_onecycle have an optional warmup in front):
//   constant   base_lr
//   cosine     warmup, then min_lr + (base_lr - min_lr) * (1 + cos(pi * s / (total - warmup))) / 2
//              with s = step - warmup: LinearLR + CosineAnnealingLR chained by SequentialLR
//   linear     warmup, then linear decay from base_lr to min_lr at total_steps (DeepSpeed's
//              WarmupDecayLR)
//   step       warmup, then base_lr * gamma^floor(step / step_size) (StepLR), or with
//              `milestones`: base_lr * gamma^(milestones <= step) (MultiStepLR), for decays at
//              epoch boundaries when epochs differ in length
//   onecycle   torch.optim.lr_scheduler.OneCycleLR: from base_lr/div_factor up to base_lr over
//              pct_start of total_steps, then down to base_lr/div_factor/final_div_factor
//              (three_phase: back to the initial lr first); anneal "cos" or "linear"
//   ds_onecycle DeepSpeed's OneCycle (lr part): min_lr -> base_lr linearly over
//              cycle_first_step_size, back over cycle_second_step_size, then
//              min_lr / (1 + decay_lr_rate * (steps past the cycle) / decay_step_size)
//   exponential the LR range test's sweep (Smith 2017, fastai's lr_find): min_lr at step 0 rising
//              geometrically to base_lr at step total_steps - 1, min_lr * (base_lr/min_lr)^(s/(T-1));
//              ExponentialLR with gamma = (base_lr/min_lr)^(1/(T-1)); no warmup
// Warmup (steps, or epochs x steps_per_epoch): "linear" from base_lr * warmup_start_factor to
// base_lr (LinearLR), or "log" as DeepSpeed's WarmupLR: start + (base - start) * log(s+1)/log(W).
// Steps past total_steps hold the final value. Thread-safe (pure).
#ifndef CONVFOREVER_OPTIM_SCHEDULE_H_
#define CONVFOREVER_OPTIM_SCHEDULE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace cf::optim {

struct ScheduleOptions {
  std::string type = "cosine";  // constant | cosine | linear | step | onecycle | ds_onecycle | exponential
  double base_lr = 1e-3;        // peak lr (OneCycleLR's max_lr)
  double min_lr = 0.0;          // end of cosine / linear decay; ds_onecycle's cycle_min_lr
  int64_t total_steps = 0;      // needed by cosine, linear, onecycle
  int64_t warmup_steps = 0;
  double warmup_epochs = 0.0;   // used when > 0: warmup = round(warmup_epochs * steps_per_epoch)
  int64_t steps_per_epoch = 0;
  double warmup_start_factor = 0.0;  // lr at step 0 = base_lr * this
  std::string warmup_type = "linear";  // linear | log
  // step
  int64_t step_size = 1;
  double gamma = 0.1;
  std::vector<int64_t> milestones;  // increasing steps; when given, used instead of step_size
  // onecycle
  double pct_start = 0.3;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool three_phase = false;
  std::string anneal = "cos";  // cos | linear
  // ds_onecycle
  int64_t cycle_first_step_size = 1000;
  int64_t cycle_second_step_size = 0;  // 0: same as the first
  int64_t decay_step_size = 0;         // 0: no decay after the cycle
  double decay_lr_rate = 0.0;
};

// Checks the options (errors name the field: unknown type, total_steps missing, warmup longer
// than the schedule, pct_start outside (0, 1), non-positive factors ...).
absl::Status ValidateSchedule(const ScheduleOptions& options);

// Warmup length in steps after resolving warmup_epochs.
int64_t WarmupSteps(const ScheduleOptions& options);

// The lr of optimizer step `step` (>= 0). Options must pass ValidateSchedule.
double LearningRate(const ScheduleOptions& options, int64_t step);

}  // namespace cf::optim

#endif  // CONVFOREVER_OPTIM_SCHEDULE_H_
