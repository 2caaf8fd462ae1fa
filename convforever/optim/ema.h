// Exponential moving average of model weights (Polyak & Juditsky 1992; as timm's ModelEmaV3):
// after each optimizer step, shadow = d * shadow + (1 - d) * model for floating tensors, a plain
// copy for integer ones (e.g. BatchNorm's num_batches_tracked). Optional warmup of the decay
// (timm): d_t = clamp(1 - (1 + t / warmup_gamma)^(-warmup_power), min_decay, decay), so early
// averages are not dominated by the random initialization. Evaluation swaps the shadow into the
// model with an RAII guard and swaps back on scope exit.
// Contract: the named tensors (parameters and buffers, any shapes) are shared with the model and
// must stay the same tensors for the Ema's lifetime; the shadow lives on the same devices. Not
// thread-safe: call from the training thread, never during a forward/backward.
#ifndef CONVFOREVER_OPTIM_EMA_H_
#define CONVFOREVER_OPTIM_EMA_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace cf::optim {

struct EmaOptions {
  double decay = 0.9998;
  bool warmup = false;
  double warmup_gamma = 1.0;
  double warmup_power = 2.0 / 3.0;
  double min_decay = 0.0;
};

class Ema {
 public:
  Ema(std::vector<std::pair<std::string, at::Tensor>> named_tensors, EmaOptions options);

  // Decay used by Update(step); `step` counts optimizer steps, 1 after the first.
  double DecayAt(int64_t step) const;
  // Folds the model's current values into the shadow.
  void Update(int64_t step);

  // While alive, the model holds the shadow values; destruction restores the training weights.
  class SwapGuard {
   public:
    explicit SwapGuard(Ema* ema);
    ~SwapGuard();
    SwapGuard(const SwapGuard&) = delete;
    SwapGuard& operator=(const SwapGuard&) = delete;

   private:
    Ema* ema_;
    std::vector<at::Tensor> backup_;
  };
  [[nodiscard]] SwapGuard SwapIn() { return SwapGuard(this); }

  // Shadow tensors as "<name>" (CPU copies) + meta {"decay", "updates"}; LoadState checks names
  // and shapes and names the first mismatch.
  absl::Status SaveState(std::vector<std::pair<std::string, at::Tensor>>* tensors,
                         nlohmann::json* meta) const;
  absl::Status LoadState(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                         const nlohmann::json& meta);

  const std::vector<std::string>& names() const { return names_; }
  const std::vector<at::Tensor>& shadow() const { return shadow_; }
  int64_t updates() const { return updates_; }

 private:
  EmaOptions options_;
  std::vector<std::string> names_;
  std::vector<at::Tensor> model_;
  std::vector<at::Tensor> shadow_;
  std::vector<size_t> floating_;  // indices averaged; the others are copied
  int64_t updates_ = 0;
  bool swapped_ = false;
};

}  // namespace cf::optim

#endif  // CONVFOREVER_OPTIM_EMA_H_
