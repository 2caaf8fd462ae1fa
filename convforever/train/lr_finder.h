// The learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks",
// 2017; fastai's lr_find): train from the run's starting weights for `steps` optimizer steps while
// the lr rises geometrically from `start_lr` to `end_lr` (the "exponential" schedule), record the
// loss of every step, smooth it, stop early once it diverges, and suggest the lr where the
// smoothed loss falls fastest.
//
// Everything else is the recipe's: model, init_from, data and augmentation, optimizer and its
// weight decay, batch size, accumulation, precision, clipping. The run's weights are left as they
// were: no checkpoint, no metrics store, no Hub snapshot; only lr_finder.csv
// (step,lr,loss,smoothed_loss) and lr_finder.json (suggested_lr, min_lr, max_lr, steps, diverged,
// the sweep's start/end) are written to the run directory. One process (a launched multi-rank job
// is refused: each rank would sweep alone).
#ifndef CONVFOREVER_TRAIN_LR_FINDER_H_
#define CONVFOREVER_TRAIN_LR_FINDER_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convforever/train/trainer.h"

namespace cf::train {

struct LrFinderOptions {
  double start_lr = 1e-7;
  double end_lr = 10.0;
  int64_t steps = 100;
  double smoothing = 0.98;         // EMA factor of the smoothed loss (bias-corrected)
  double divergence_factor = 4.0;  // stop when smoothed loss > this x the lowest one so far
};

struct LrFinderPoint {
  int64_t step = 0;  // 1-based optimizer step
  double lr = 0;
  double loss = 0;
  double smoothed_loss = 0;
};

struct LrFinderResult {
  std::vector<LrFinderPoint> points;
  double suggested_lr = 0;  // 0 when the curve is too short to say
  double min_lr = 0;        // the sweep's range as run (the last lr is where it stopped)
  double max_lr = 0;
  bool diverged = false;
};

// Bias-corrected exponential moving average of `losses` (fastai's smoothing): s_i = a_i / (1 -
// beta^(i+1)) with a_i = beta * a_{i-1} + (1 - beta) * loss_i.
std::vector<double> SmoothLosses(const std::vector<double>& losses, double beta);

// The lr at the steepest descent of the smoothed loss against log(lr), looked for between the
// start and the lowest smoothed loss (after it the curve only rises), skipping the first tenth of
// the points whose smoothing still carries its start. Central differences in log10(lr). 0 when
// fewer than 5 points.
double SuggestLearningRate(const std::vector<LrFinderPoint>& points);

absl::Status ValidateLrFinderOptions(const LrFinderOptions& finder);

// Runs the test with `options` (the recipe) and writes lr_finder.csv/.json to options.run_dir.
absl::StatusOr<LrFinderResult> FindLearningRate(const TrainerOptions& options,
                                                const LrFinderOptions& finder);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_LR_FINDER_H_
