#include "convforever/train/epoch_steps.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"

namespace cf::train {

absl::StatusOr<EpochSteps> EpochSteps::Count(double epochs, int64_t accumulation,
                                             const std::function<int64_t(int64_t)>& batches_in_epoch) {
  const int64_t n = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(epochs)));
  std::vector<int64_t> steps;
  steps.reserve(n);
  for (int64_t e = 0; e < n; ++e) {
    const int64_t batches = batches_in_epoch(e);
    const int64_t s = batches / accumulation;
    if (s <= 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "epoch %d of the training set gives %d batches per rank, fewer than "
          "--gradient_accumulation_steps=%d (lower the batch size or the accumulation)",
          e, batches, accumulation));
    }
    steps.push_back(s);
  }
  return EpochSteps(std::move(steps), epochs);
}

EpochSteps::EpochSteps(std::vector<int64_t> steps, double epochs)
    : steps_(std::move(steps)), epochs_(epochs) {}

int64_t EpochSteps::steps_in_epoch(int64_t epoch) const {
  if (steps_.empty()) return 0;
  return steps_[std::min<int64_t>(std::max<int64_t>(epoch, 0), steps_.size() - 1)];
}

int64_t EpochSteps::StepAtEpoch(double epoch, bool round_up) const {
  if (!(epoch > 0)) return 0;
  const int64_t whole = static_cast<int64_t>(std::floor(epoch));
  int64_t step = 0;
  for (int64_t e = 0; e < whole; ++e) step += steps_in_epoch(e);
  const double part = (epoch - static_cast<double>(whole)) * static_cast<double>(steps_in_epoch(whole));
  return step + static_cast<int64_t>(round_up ? std::ceil(part) : std::llround(part));
}

bool EpochSteps::uniform() const {
  return std::all_of(steps_.begin(), steps_.end(), [&](int64_t s) { return s == steps_.front(); });
}

}  // namespace cf::train
