#include "convforever/optim/schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace cf::optim {
namespace {

constexpr double kPi = 3.14159265358979323846;

absl::Status Bad(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("schedule option ", field, ": ", why));
}

// OneCycleLR's annealing from `start` to `end` at fraction `pct` of a phase.
double Anneal(const std::string& how, double start, double end, double pct) {
  if (how == "linear") return (end - start) * pct + start;
  return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0);
}

double OneCycle(const ScheduleOptions& o, int64_t step) {
  const double initial = o.base_lr / o.div_factor;
  const double min_lr = initial / o.final_div_factor;
  const double total = static_cast<double>(o.total_steps);
  struct Phase { double end_step, start_lr, end_lr; };
  Phase phases[3];
  int n = 0;
  if (o.three_phase) {
    phases[n++] = {o.pct_start * total - 1, initial, o.base_lr};
    phases[n++] = {2 * o.pct_start * total - 2, o.base_lr, initial};
    phases[n++] = {total - 1, initial, min_lr};
  } else {
    phases[n++] = {o.pct_start * total - 1, initial, o.base_lr};
    phases[n++] = {total - 1, o.base_lr, min_lr};
  }
  const double s = static_cast<double>(std::min<int64_t>(step, o.total_steps - 1));
  double start_step = 0;
  for (int i = 0; i < n; ++i) {
    if (s <= phases[i].end_step || i == n - 1) {
      const double pct = (s - start_step) / (phases[i].end_step - start_step);
      return Anneal(o.anneal, phases[i].start_lr, phases[i].end_lr, pct);
    }
    start_step = phases[i].end_step;
  }
  return min_lr;
}

double DsOneCycle(const ScheduleOptions& o, int64_t step) {
  const int64_t up = o.cycle_first_step_size;
  const int64_t down = o.cycle_second_step_size > 0 ? o.cycle_second_step_size : up;
  if (step <= up) return o.min_lr + (o.base_lr - o.min_lr) * step / static_cast<double>(up);
  if (step <= up + down) {
    return o.base_lr - (o.base_lr - o.min_lr) * (step - up) / static_cast<double>(down);
  }
  if (o.decay_step_size <= 0) return o.min_lr;
  const double past = static_cast<double>(step - up - down);
  return o.min_lr / (1.0 + o.decay_lr_rate * past / static_cast<double>(o.decay_step_size));
}

}  // namespace

int64_t WarmupSteps(const ScheduleOptions& o) {
  if (o.warmup_epochs > 0) {
    return static_cast<int64_t>(std::llround(o.warmup_epochs * static_cast<double>(o.steps_per_epoch)));
  }
  return o.warmup_steps;
}

absl::Status ValidateSchedule(const ScheduleOptions& o) {
  const std::string& t = o.type;
  if (t != "constant" && t != "cosine" && t != "linear" && t != "step" && t != "onecycle" &&
      t != "ds_onecycle" && t != "exponential") {
    return Bad("type", absl::StrCat("\"", t, "\" unknown: expected constant, cosine, linear, step, "
                                    "onecycle, ds_onecycle or exponential"));
  }
  if (!(o.base_lr >= 0) || !std::isfinite(o.base_lr)) return Bad("base_lr", "must be finite and >= 0");
  if (!(o.min_lr >= 0) || o.min_lr > o.base_lr) return Bad("min_lr", "must be in [0, base_lr]");
  if (o.warmup_steps < 0) return Bad("warmup_steps", "must be >= 0");
  if (o.warmup_epochs < 0) return Bad("warmup_epochs", "must be >= 0");
  if (o.warmup_epochs > 0 && o.steps_per_epoch <= 0) {
    return Bad("steps_per_epoch", "must be > 0 when warmup is given in epochs");
  }
  if (!(o.warmup_start_factor >= 0 && o.warmup_start_factor <= 1)) {
    return Bad("warmup_start_factor", "must be in [0, 1]");
  }
  if (o.warmup_type != "linear" && o.warmup_type != "log") {
    return Bad("warmup_type", absl::StrCat("\"", o.warmup_type, "\": expected linear or log"));
  }
  const int64_t warmup = WarmupSteps(o);
  const bool needs_total = t == "cosine" || t == "linear" || t == "onecycle";
  if (needs_total && o.total_steps <= 0) return Bad("total_steps", absl::StrCat("must be > 0 for ", t));
  if ((t == "cosine" || t == "linear") && warmup >= o.total_steps) {
    return Bad("warmup_steps", absl::StrCat(warmup, " warmup steps leave nothing of total_steps=", o.total_steps));
  }
  if (t == "step" && o.step_size <= 0) return Bad("step_size", "must be > 0");
  for (size_t i = 0; i < o.milestones.size(); ++i) {
    if (o.milestones[i] <= 0 || (i > 0 && o.milestones[i] <= o.milestones[i - 1])) {
      return Bad("milestones", "must be positive and increasing");
    }
  }
  if (t == "step" && !(o.gamma > 0)) return Bad("gamma", "must be > 0");
  if (t == "onecycle") {
    if (!(o.pct_start > 0 && o.pct_start < 1)) return Bad("pct_start", "must be in (0, 1)");
    if (!(o.div_factor > 0)) return Bad("div_factor", "must be > 0");
    if (!(o.final_div_factor > 0)) return Bad("final_div_factor", "must be > 0");
    if (o.anneal != "cos" && o.anneal != "linear") {
      return Bad("anneal", absl::StrCat("\"", o.anneal, "\": expected cos or linear"));
    }
    // OneCycleLR divides by each phase's length: a phase must span at least one step.
    const double first_end = o.pct_start * o.total_steps - 1;
    const double second_end = o.three_phase ? 2 * o.pct_start * o.total_steps - 2 : o.total_steps - 1;
    if (first_end <= 0 || second_end <= first_end || (o.three_phase && o.total_steps - 1 <= second_end)) {
      return Bad("pct_start", absl::StrCat(o.pct_start, " with total_steps=", o.total_steps,
                                           " leaves an empty phase"));
    }
  }
  if (t == "exponential") {
    if (!(o.min_lr > 0)) return Bad("min_lr", "must be > 0 for exponential (the sweep's start)");
    if (o.total_steps < 2) return Bad("total_steps", "must be >= 2 for exponential");
    if (WarmupSteps(o) != 0) return Bad("warmup_steps", "exponential has no warmup");
  }
  if (t == "ds_onecycle") {
    if (o.cycle_first_step_size <= 0) return Bad("cycle_first_step_size", "must be > 0");
    if (o.cycle_second_step_size < 0) return Bad("cycle_second_step_size", "must be >= 0");
    if (o.decay_step_size < 0) return Bad("decay_step_size", "must be >= 0");
    if (o.decay_lr_rate < 0) return Bad("decay_lr_rate", "must be >= 0");
  }
  return absl::OkStatus();
}

double LearningRate(const ScheduleOptions& o, int64_t step) {
  step = std::max<int64_t>(step, 0);
  if (o.type == "onecycle") return OneCycle(o, step);
  if (o.type == "ds_onecycle") return DsOneCycle(o, step);
  if (o.type == "exponential") {
    const double frac = static_cast<double>(std::min<int64_t>(step, o.total_steps - 1)) /
                        static_cast<double>(o.total_steps - 1);
    return o.min_lr * std::pow(o.base_lr / o.min_lr, frac);
  }
  const int64_t warmup = WarmupSteps(o);
  if (step < warmup) {
    const double start = o.base_lr * o.warmup_start_factor;
    const double frac = o.warmup_type == "log"
                            ? std::log(static_cast<double>(step + 1)) / std::log(static_cast<double>(warmup))
                            : static_cast<double>(step) / static_cast<double>(warmup);
    // LinearLR's form, base * (f + (1 - f) * s / W), to stay within rounding of PyTorch.
    return o.warmup_type == "log" ? start + (o.base_lr - start) * frac
                                  : o.base_lr * (o.warmup_start_factor + (1.0 - o.warmup_start_factor) * frac);
  }
  if (o.type == "constant") return o.base_lr;
  if (o.type == "step" && !o.milestones.empty()) {
    const auto passed = std::upper_bound(o.milestones.begin(), o.milestones.end(), step) - o.milestones.begin();
    return o.base_lr * std::pow(o.gamma, static_cast<double>(passed));
  }
  if (o.type == "step") return o.base_lr * std::pow(o.gamma, static_cast<double>(step / o.step_size));
  const double span = static_cast<double>(o.total_steps - warmup);
  const double s = std::min(static_cast<double>(step - warmup), span);
  if (o.type == "linear") return o.min_lr + (o.base_lr - o.min_lr) * (1.0 - s / span);
  // cosine (CosineAnnealingLR's closed form)
  return o.min_lr + (o.base_lr - o.min_lr) * (1.0 + std::cos(kPi * s / span)) / 2.0;
}

}  // namespace cf::optim
