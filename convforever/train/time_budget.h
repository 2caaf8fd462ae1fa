// --time_budget: a run's length planned from its measured throughput, so that training, the
// periodic evaluations and checkpoints and the final evaluation end within a wall-clock budget,
// with the whole lr schedule (warmup + decay to --min_lr) over the planned steps.
//
// How the trainer uses it (trainer.cc): it runs the first steps with the schedule of the cap
// (--max_steps, else --epochs), times the steps of a window (StepWindow: from the 6th step after
// the start, until 150 steps are timed or, after at least 5, the window took 5% of the budget; the
// data loader's wait is inside each step), estimates one evaluation pass from a timed forward
// pass, and PlanBudget() picks the largest step count whose predicted wall time fits the budget
// less a 4% margin. The schedule is then rebuilt over that count. The warmup is defined in steps,
// so when the plan comes during the warmup (at most 155 steps in: the default recipe warms up for 200)
// the steps already taken had exactly the lr the planned schedule gives them; with a warmup shorter
// than the window, the steps between its end and the plan ran the cap's (slower) cosine. Only
// when the plan is not longer than the warmup is the warmup shortened (to the fraction of the
// planned run it had of the capped run, never below the steps already taken: no lr step back),
// and the log says so.
//
// --epochs / --max_steps are the cap: the run is min(what the budget allows, the cap) long. A
// resumed run keeps the plan's budget_steps and takes the cap of its own flags (a larger
// --max_steps on resume extends a capped run, as it does without a budget; with the same flags the
// run is the same). The budget is the whole run's, over resumes: the elapsed time a checkpoint carries
// (train_seconds) counts. The plan (BudgetPlan) is stored in every checkpoint's
// trainer_state.json and a resumed run continues it unchanged (the same total steps, the same
// schedule, so resume stays exact); the time a kill and restart lose is not won back by
// shortening the run, the resumed run logs the expected end against the budget instead. There is
// no re-plan later in the run. Pure functions; thread-safe.
#ifndef CONVFOREVER_TRAIN_TIME_BUDGET_H_
#define CONVFOREVER_TRAIN_TIME_BUDGET_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace cf::train {

// "90s", "8m", "1h30m", "1.5h", "2h5m30s": hours, minutes and seconds, each a non-negative
// decimal, in that order; the total must be > 0. A bare number (no unit) is an error naming
// --time_budget and the accepted forms. Returns seconds.
absl::StatusOr<double> ParseTimeBudget(absl::string_view text);

// "8m", "1h30m", "45s", "1h0m5s" (whole seconds): the budget as a user writes it.
std::string FormatBudget(double seconds);

inline constexpr double kBudgetMargin = 0.04;  // of the budget, kept free for noise

// Which steps are timed: the first kWarmSteps after `first_step` warm the machine up (allocator,
// first-iteration costs) and are not timed.
class StepWindow {
 public:
  static constexpr int64_t kWarmSteps = 5;
  static constexpr int64_t kMinTimed = 5;
  // ~15-20 s of the default recipe on 2 cores: windows of 60 steps (6-7 s) were off by up to 20%
  // on a shared machine whose speed wanders over seconds.
  static constexpr int64_t kMaxTimed = 150;
  static constexpr double kBudgetFraction = 0.05;

  StepWindow(int64_t first_step, double budget_seconds)
      : start_(first_step + kWarmSteps), budget_(budget_seconds) {}
  // Whether the step `step` (0-based, about to run) is timed.
  bool Times(int64_t step) const { return step >= start_; }
  void Add(double seconds) { seconds_ += seconds, ++timed_; }
  // Enough steps timed to plan: kMaxTimed, or kMinTimed that took kBudgetFraction of the budget.
  bool Enough() const {
    return timed_ >= kMaxTimed || (timed_ >= kMinTimed && seconds_ >= kBudgetFraction * budget_);
  }
  int64_t timed() const { return timed_; }
  int64_t first_timed_step() const { return start_; }
  double seconds_per_step() const { return timed_ > 0 ? seconds_ / static_cast<double>(timed_) : 0; }

 private:
  int64_t start_;
  double budget_;
  double seconds_ = 0;
  int64_t timed_ = 0;
};

struct BudgetInputs {
  double budget_seconds = 0;
  double margin = kBudgetMargin;
  double elapsed_seconds = 0;      // spent so far: setup, the steps taken, earlier resumes
  int64_t steps_done = 0;          // optimizer steps taken when planning
  double step_seconds = 0;         // measured per optimizer step (slowest rank)
  int64_t images_per_step = 0;     // all ranks: micro batch x accumulation x world size
  double eval_seconds = 0;         // one evaluation (raw and EMA weights when EMA is on)
  double checkpoint_seconds = 0;   // one checkpoint
  int64_t cap_steps = 0;           // --max_steps, else --epochs x steps per epoch
  int64_t eval_every_steps = 0;    // the evaluation interval in steps (an epoch's steps for 0)
  int64_t checkpoint_every_steps = 0;  // the checkpoint interval in steps (likewise)
  int64_t steps_per_epoch = 0;
  int64_t warmup_steps = 0;        // the schedule's warmup, resolved to steps
  int64_t multiple_of = 1;         // the planned count is a multiple of this (DiLoCo's H) unless capped
};

struct BudgetPlan {
  double budget_seconds = 0;
  int64_t total_steps = 0;         // the run's planned optimizer steps: min(budget_steps, cap_steps)
  int64_t budget_steps = 0;        // the steps the budget allows (past the cap too)
  int64_t planned_at_step = 0;
  double elapsed_seconds = 0;      // spent when planning (start-up, steps, earlier resumes)
  int64_t cap_steps = 0;
  bool capped = false;             // the cap is shorter than what the budget allows
  double step_seconds = 0;
  double images_per_sec = 0;
  double eval_seconds = 0;
  int64_t evals = 0;               // evaluations still to come, the final one included
  double checkpoint_seconds = 0;
  int64_t checkpoints = 0;         // likewise
  double expected_seconds = 0;     // predicted wall time of the whole run
  int64_t warmup_steps = 0;        // the schedule's warmup over the plan
  bool warmup_shortened = false;
  double epochs = 0;               // total_steps / steps_per_epoch
};

// budget_steps: the largest step count N > steps_done whose predicted wall time,
//   elapsed + (N - steps_done) x step + evals x eval + checkpoints x checkpoint,
// fits budget x (1 - margin), with evals (checkpoints) at every interval's multiple in
// (steps_done, N) plus the final one at N; rounded down to a multiple of 10 when over 100 steps
// (round numbers in logs), and to `multiple_of`. total_steps: that, or cap_steps when smaller
// (capped). An error (naming --time_budget) when not even one more step and the final evaluation
// fit.
absl::StatusOr<BudgetPlan> PlanBudget(const BudgetInputs& in);

// Predicted wall time of a run of `total_steps` (the function PlanBudget maximises under the
// budget); `evals` / `checkpoints` get the counts when non-null.
double PredictSeconds(const BudgetInputs& in, int64_t total_steps, int64_t* evals = nullptr,
                      int64_t* checkpoints = nullptr);

// A guess at one checkpoint's cost from its size (weights, two optimizer slots, EMA: 4 copies of
// `param_count` fp32 values written at 200 MB/s, plus 50 ms): checkpoints are not timed before
// the plan.
double CheckpointSecondsGuess(int64_t param_count);

// The log line: measured images/s, the plan (steps, epochs), the evaluations, the expected end
// (`end_clock`, e.g. "04:12:31").
std::string DescribePlan(const BudgetPlan& plan, const std::string& end_clock);

// trainer_state.json's and summary.json's "time_budget" object, and back (errors name the field).
nlohmann::json BudgetPlanJson(const BudgetPlan& plan);
absl::StatusOr<BudgetPlan> BudgetPlanFromJson(const nlohmann::json& j);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_TIME_BUDGET_H_
