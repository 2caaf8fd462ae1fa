#include "convforever/train/time_budget.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace cf::train {
namespace {

constexpr char kForms[] = "90s, 8m, 1h30m or 1.5h";

absl::Status BadBudget(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--time_budget=", text, ": ", why, " (accepted forms: ", kForms, ")"));
}

// Multiples of `interval` in (from, to).
int64_t MultiplesBetween(int64_t interval, int64_t from, int64_t to) {
  if (interval <= 0 || to <= from + 1) return 0;
  return (to - 1) / interval - from / interval;
}

}  // namespace

absl::StatusOr<double> ParseTimeBudget(absl::string_view text) {
  if (text.empty()) return BadBudget(text, "empty");
  double total = 0;
  size_t i = 0;
  int last_unit = -1;  // index into "hms": units appear once each, in that order
  while (i < text.size()) {
    const size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    const absl::string_view number = text.substr(start, i - start);
    if (number.empty()) return BadBudget(text, absl::StrCat("expected a number at '", text.substr(start), "'"));
    double value = 0;
    if (!absl::SimpleAtod(number, &value) || !(value >= 0) || !std::isfinite(value)) {
      return BadBudget(text, absl::StrCat("'", number, "' is not a number"));
    }
    if (i == text.size()) {
      return BadBudget(text, absl::StrCat("'", number, "' has no unit; say h, m or s"));
    }
    const char unit = text[i++];
    const int index = unit == 'h' ? 0 : unit == 'm' ? 1 : unit == 's' ? 2 : -1;
    if (index < 0) return BadBudget(text, absl::StrCat("unknown unit '", std::string(1, unit), "'; say h, m or s"));
    if (index <= last_unit) return BadBudget(text, "units go hours, minutes, seconds, each once");
    last_unit = index;
    total += value * (index == 0 ? 3600.0 : index == 1 ? 60.0 : 1.0);
  }
  if (!(total > 0)) return BadBudget(text, "must be longer than 0");
  return total;
}

std::string FormatBudget(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
  std::string out;
  if (h > 0) absl::StrAppend(&out, h, "h");
  if (m > 0 || (h > 0 && sec > 0)) absl::StrAppend(&out, m, "m");
  if (sec > 0 || out.empty()) absl::StrAppend(&out, sec, "s");
  return out;
}

double PredictSeconds(const BudgetInputs& in, int64_t total_steps, int64_t* evals, int64_t* checkpoints) {
  const int64_t eval_every = in.eval_every_steps > 0 ? in.eval_every_steps : in.steps_per_epoch;
  const int64_t ckpt_every = in.checkpoint_every_steps > 0 ? in.checkpoint_every_steps : in.steps_per_epoch;
  // The periodic ones before the end, and the final one at total_steps (which a periodic one at
  // that step would be: the trainer does not repeat it).
  const int64_t n_evals = MultiplesBetween(eval_every, in.steps_done, total_steps) + 1;
  const int64_t n_ckpts = MultiplesBetween(ckpt_every, in.steps_done, total_steps) + 1;
  if (evals) *evals = n_evals;
  if (checkpoints) *checkpoints = n_ckpts;
  return in.elapsed_seconds + static_cast<double>(total_steps - in.steps_done) * in.step_seconds +
         static_cast<double>(n_evals) * in.eval_seconds + static_cast<double>(n_ckpts) * in.checkpoint_seconds;
}

double CheckpointSecondsGuess(int64_t param_count) {
  return 0.05 + 4.0 * 4.0 * static_cast<double>(param_count) / 200e6;
}

absl::StatusOr<BudgetPlan> PlanBudget(const BudgetInputs& in) {
  const double usable = in.budget_seconds * (1.0 - in.margin);
  const int64_t first = in.steps_done + 1;
  if (in.cap_steps < first) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--time_budget: nothing to plan, the run's cap of ", in.cap_steps, " steps is already reached"));
  }
  if (PredictSeconds(in, first) > usable) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "--time_budget=%s: %.1f s are spent (start-up and %d steps) and one more step (%.3f s) with "
        "the final evaluation (%.1f s) and checkpoint passes %.0f%% of the budget: raise --time_budget",
        FormatBudget(in.budget_seconds), in.elapsed_seconds, in.steps_done, in.step_seconds,
        in.eval_seconds, 100 * (1 - in.margin)));
  }
  // PredictSeconds grows with the step count, each step by at least step_seconds: the largest
  // fitting count by bisection, searched past the cap too (a resume with another cap re-caps it).
  int64_t lo = first;
  int64_t hi = in.cap_steps;
  if (in.step_seconds > 0) {
    hi = std::max(hi, first + static_cast<int64_t>((usable - in.elapsed_seconds) / in.step_seconds) + 1);
  }
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (PredictSeconds(in, mid) <= usable) lo = mid; else hi = mid - 1;
  }
  int64_t fit = lo;
  if (fit > 100) fit -= fit % 10;
  if (in.multiple_of > 1 && fit >= in.multiple_of) fit -= fit % in.multiple_of;
  fit = std::max(fit, first);
  BudgetPlan p;
  p.budget_steps = fit;
  p.capped = in.cap_steps < fit;
  const int64_t n = std::min(fit, in.cap_steps);
  p.budget_seconds = in.budget_seconds;
  p.total_steps = n;
  p.planned_at_step = in.steps_done;
  p.elapsed_seconds = in.elapsed_seconds;
  p.cap_steps = in.cap_steps;
  p.step_seconds = in.step_seconds;
  p.images_per_sec = in.step_seconds > 0 ? static_cast<double>(in.images_per_step) / in.step_seconds : 0;
  p.eval_seconds = in.eval_seconds;
  p.checkpoint_seconds = in.checkpoint_seconds;
  p.expected_seconds = PredictSeconds(in, n, &p.evals, &p.checkpoints);
  p.warmup_steps = in.warmup_steps;
  if (in.warmup_steps >= n) {
    // The warmup would not end within the plan: the same fraction of the plan it had of the cap,
    // never below the steps already taken (their lr stays what it was).
    const int64_t scaled = static_cast<int64_t>(std::llround(
        static_cast<double>(in.warmup_steps) * static_cast<double>(n) / static_cast<double>(in.cap_steps)));
    p.warmup_steps = std::min(n - 1, std::max(in.steps_done, scaled));
    p.warmup_shortened = true;
  }
  p.epochs = in.steps_per_epoch > 0 ? static_cast<double>(n) / static_cast<double>(in.steps_per_epoch) : 0;
  return p;
}

std::string DescribePlan(const BudgetPlan& p, const std::string& end_clock) {
  std::string s = absl::StrFormat(
      "time budget %s: measured %.0f images/s (%.3f s/step, data loading included); planned %d "
      "steps (%.2f epochs%s) at step %d; %d evaluations of ~%.1f s and %d checkpoints of ~%.1f s "
      "to come; expected end %s (%s of %s, %.0f%% margin)",
      FormatBudget(p.budget_seconds), p.images_per_sec, p.step_seconds, p.total_steps, p.epochs,
      p.capped ? absl::StrCat(", the cap: --epochs/--max_steps end the run first") : "",
      p.planned_at_step, p.evals, p.eval_seconds, p.checkpoints, p.checkpoint_seconds, end_clock,
      FormatBudget(p.expected_seconds), FormatBudget(p.budget_seconds), 100 * kBudgetMargin);
  if (p.warmup_shortened) {
    absl::StrAppend(&s, "; the warmup is shortened to ", p.warmup_steps, " steps to fit the plan");
  }
  return s;
}

nlohmann::json BudgetPlanJson(const BudgetPlan& p) {
  return {{"budget_seconds", p.budget_seconds},     {"total_steps", p.total_steps},
          {"planned_at_step", p.planned_at_step},   {"elapsed_seconds", p.elapsed_seconds},
          {"cap_steps", p.cap_steps},
          {"capped", p.capped},                     {"step_seconds", p.step_seconds},
          {"images_per_sec", p.images_per_sec},     {"eval_seconds", p.eval_seconds},
          {"evals", p.evals},                       {"checkpoint_seconds", p.checkpoint_seconds},
          {"checkpoints", p.checkpoints},           {"expected_seconds", p.expected_seconds},
          {"budget_steps", p.budget_steps},
          {"warmup_steps", p.warmup_steps},         {"warmup_shortened", p.warmup_shortened},
          {"epochs", p.epochs}};
}

absl::StatusOr<BudgetPlan> BudgetPlanFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return absl::DataLossError("time_budget: not an object");
  for (const char* key : {"budget_seconds", "total_steps", "budget_steps", "planned_at_step", "warmup_steps"}) {
    if (!j.contains(key) || !j.at(key).is_number()) {
      return absl::DataLossError(absl::StrCat("time_budget.", key, ": missing or not a number"));
    }
  }
  BudgetPlan p;
  p.budget_seconds = j.at("budget_seconds").get<double>();
  p.total_steps = j.at("total_steps").get<int64_t>();
  p.budget_steps = j.at("budget_steps").get<int64_t>();
  p.planned_at_step = j.at("planned_at_step").get<int64_t>();
  p.warmup_steps = j.at("warmup_steps").get<int64_t>();
  if (p.total_steps <= p.planned_at_step) {
    return absl::DataLossError(absl::StrCat("time_budget.total_steps: ", p.total_steps,
                                            " is not after planned_at_step ", p.planned_at_step));
  }
  p.elapsed_seconds = j.value("elapsed_seconds", 0.0);
  p.cap_steps = j.value("cap_steps", p.total_steps);
  p.capped = j.value("capped", false);
  p.step_seconds = j.value("step_seconds", 0.0);
  p.images_per_sec = j.value("images_per_sec", 0.0);
  p.eval_seconds = j.value("eval_seconds", 0.0);
  p.evals = j.value("evals", int64_t{0});
  p.checkpoint_seconds = j.value("checkpoint_seconds", 0.0);
  p.checkpoints = j.value("checkpoints", int64_t{0});
  p.expected_seconds = j.value("expected_seconds", 0.0);
  p.warmup_shortened = j.value("warmup_shortened", false);
  p.epochs = j.value("epochs", 0.0);
  return p;
}

}  // namespace cf::train
