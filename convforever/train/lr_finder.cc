#include "convforever/train/lr_finder.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/signals.h"
#include "convforever/base/status_macros.h"
#include "convforever/train/metrics.h"
#include "convforever/train/run_setup.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

// The recipe, turned into the sweep: the exponential schedule over `steps`, and nothing that
// writes outside lr_finder.* or changes shared state (resume, Hub, Trackio, TensorBoard).
TrainerOptions SweepOptions(const TrainerOptions& recipe, const LrFinderOptions& finder) {
  TrainerOptions o = recipe;
  optim::ScheduleOptions schedule;
  schedule.type = "exponential";
  schedule.min_lr = finder.start_lr;
  schedule.base_lr = finder.end_lr;
  schedule.total_steps = finder.steps;
  o.schedule_override = schedule;
  o.max_steps = finder.steps;
  o.resume.clear();
  o.hub_repo.clear();
  o.trackio_project.clear();
  o.tensorboard = false;
  o.ema_decay = 0;  // EMA weights are never evaluated here
  return o;
}

absl::Status WriteOutputs(const std::string& run_dir, const LrFinderOptions& finder,
                          const LrFinderResult& r) {
  std::string csv = "step,lr,loss,smoothed_loss\n";
  for (const LrFinderPoint& p : r.points) {
    absl::StrAppendFormat(&csv, "%d,%.9g,%.9g,%.9g\n", p.step, p.lr, p.loss, p.smoothed_loss);
  }
  RETURN_IF_ERROR(base::WriteFileAtomically(run_dir + "/lr_finder.csv", csv));
  const nlohmann::json j = {{"suggested_lr", r.suggested_lr},
                            {"min_lr", r.min_lr},
                            {"max_lr", r.max_lr},
                            {"steps", static_cast<int64_t>(r.points.size())},
                            {"diverged", r.diverged},
                            {"start_lr", finder.start_lr},
                            {"end_lr", finder.end_lr},
                            {"planned_steps", finder.steps},
                            {"smoothing", finder.smoothing}};
  return base::WriteFileAtomically(run_dir + "/lr_finder.json", j.dump(2) + "\n");
}

}  // namespace

std::vector<double> SmoothLosses(const std::vector<double>& losses, double beta) {
  std::vector<double> out;
  out.reserve(losses.size());
  double avg = 0;
  double correction = 1;
  for (double loss : losses) {
    avg = beta * avg + (1 - beta) * loss;
    correction *= beta;
    out.push_back(avg / (1 - correction));
  }
  return out;
}

double SuggestLearningRate(const std::vector<LrFinderPoint>& points) {
  const size_t n = points.size();
  if (n < 5) return 0;
  size_t lowest = 0;
  for (size_t i = 1; i < n; ++i) {
    if (points[i].smoothed_loss < points[lowest].smoothed_loss) lowest = i;
  }
  const size_t first = std::max<size_t>(1, n / 10);
  const size_t last = std::min(lowest, n - 2);
  if (last < first) return points[lowest].lr;  // the loss only rose: the lowest lr tried
  size_t best = first;
  double best_slope = 0;
  for (size_t i = first; i <= last; ++i) {
    const double dx = std::log10(points[i + 1].lr) - std::log10(points[i - 1].lr);
    const double slope = (points[i + 1].smoothed_loss - points[i - 1].smoothed_loss) / dx;
    if (i == first || slope < best_slope) {
      best_slope = slope;
      best = i;
    }
  }
  return points[best].lr;
}

absl::Status ValidateLrFinderOptions(const LrFinderOptions& f) {
  if (!(f.start_lr > 0) || !(f.end_lr > f.start_lr) || !std::isfinite(f.end_lr)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--lr_finder_start_lr=%g --lr_finder_end_lr=%g: need 0 < start < end", f.start_lr, f.end_lr));
  }
  if (f.steps < 5) {
    return absl::InvalidArgumentError(absl::StrCat("--lr_finder_steps=", f.steps, ": need >= 5"));
  }
  if (!(f.smoothing >= 0 && f.smoothing < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("lr finder smoothing ", f.smoothing, ": need [0, 1)"));
  }
  if (!(f.divergence_factor > 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("lr finder divergence factor ", f.divergence_factor, ": need > 1"));
  }
  return absl::OkStatus();
}

absl::StatusOr<LrFinderResult> FindLearningRate(const TrainerOptions& recipe,
                                                const LrFinderOptions& finder) {
  RETURN_IF_ERROR(ValidateLrFinderOptions(finder));
  RETURN_IF_ERROR(ValidateOptions(recipe));
  const TrainerOptions o = SweepOptions(recipe, finder);
  ConfigureRuntime(o);
  ASSIGN_OR_RETURN(std::unique_ptr<RunSetup> run, RunSetup::Create(o));
  if (run->world_size() > 1) {
    return absl::FailedPreconditionError(
        "--lr_finder runs in one process; start it without tools/cf launch / torchrun");
  }
  RETURN_IF_ERROR(run->StartEpoch(0));
  LrFinderResult result;
  double lowest = INFINITY;
  double average = 0;     // SmoothLosses, one step at a time
  double correction = 1;
  const int64_t accum = o.gradient_accumulation_steps;
  for (int64_t step = 0; step < finder.steps && !base::StopRequested(); ++step) {
    if (run->MicroBatchesLeftInEpoch() < accum) RETURN_IF_ERROR(run->StartEpoch(run->epoch() + 1));
    double loss_sum = 0;
    int64_t real = 0;  // micro-batches with samples (an all-unreadable one gives a zero gradient)
    for (int64_t micro = 0; micro < accum; ++micro) {
      ASSIGN_OR_RETURN(std::optional<StepBatch> batch, run->NextBatch());
      if (!batch) return absl::InternalError("the training data gave no batch for the lr finder");
      ASSIGN_OR_RETURN(double loss, run->ForwardBackward(*batch, accum, step));
      if (batch->empty) continue;
      loss_sum += loss;
      ++real;
    }
    const double loss = real > 0 ? loss_sum / real : 0.0;
    const double lr = run->LearningRate(step);
    if (!std::isfinite(loss)) {
      result.diverged = true;
      break;
    }
    ASSIGN_OR_RETURN(bool applied, run->ApplyGradients(step, /*loss_finite=*/true));
    if (real == 0) continue;  // no data this step: no point on the curve
    average = finder.smoothing * average + (1 - finder.smoothing) * loss;
    correction *= finder.smoothing;
    const double smoothed = average / (1 - correction);
    result.points.push_back({step + 1, lr, loss, smoothed});
    lowest = std::min(lowest, smoothed);
    if (!applied || (step > 0 && smoothed > finder.divergence_factor * lowest)) {
      result.diverged = true;
      break;
    }
    if ((step + 1) % 10 == 0) {
      LOG(INFO) << absl::StrFormat("lr finder step %d/%d: lr %.3g loss %.4f (smoothed %.4f)", step + 1,
                                   finder.steps, lr, loss, smoothed);
    }
  }
  run->Close();
  if (result.points.empty()) {
    return absl::AbortedError("the lr finder's first step already had a non-finite loss");
  }
  result.min_lr = result.points.front().lr;
  result.max_lr = result.points.back().lr;
  result.suggested_lr = SuggestLearningRate(result.points);
  RETURN_IF_ERROR(WriteOutputs(o.run_dir, finder, result));
  return result;
}

}  // namespace cf::train
