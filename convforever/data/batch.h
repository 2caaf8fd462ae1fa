// Batch assembly and batch-level mixing: the only place in convforever/data where images become
// float tensors.
//
// AssembleImages turns B uint8 HWC images of equal size into a float32 tensor [B, C, H, W]
// (optionally in channels_last memory format), normalized as (x / 255 - mean[c]) / std[c] in one
// fused pass through a per-channel lookup table. MixUp (Zhang et al., "mixup: Beyond Empirical
// Risk Minimization", 2018) and CutMix (Yun et al., "CutMix: Regularization Strategy to Train
// Strong Classifiers with Localizable Features", 2019) follow timm's `Mixup` in batch mode: with
// probability `prob` one lambda ~ Beta(alpha, alpha) for the whole batch, partner = the batch
// reversed, CutMix chosen with `switch_prob` when both are on, the CutMix lambda corrected to the
// pasted box's area; targets are one-hot with label smoothing (off = eps / K, on = 1 - eps + off)
// mixed by lambda, shape [B, K] float32. Thread-safe (no shared state); LibTorch errors are
// caught and returned as a Status.
#ifndef CONVFOREVER_DATA_BATCH_H_
#define CONVFOREVER_DATA_BATCH_H_

#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "convforever/data/image.h"
#include "convforever/data/rng.h"

namespace cf::data {

struct MixOptions {
  double mixup_alpha = 0.0;   // 0 = off (timm --mixup)
  double cutmix_alpha = 0.0;  // 0 = off (timm --cutmix)
  double prob = 1.0;          // probability a batch is mixed (timm --mixup-prob)
  double switch_prob = 0.5;   // CutMix instead of MixUp when both are on (timm --mixup-switch-prob)
  double label_smoothing = 0.0;  // with mixing, or alone: targets become soft [B, K]
  bool enabled() const { return mixup_alpha > 0 || cutmix_alpha > 0; }
};

// `out`, when defined, is written instead of allocating (its shape and format must match); the
// Loader passes recycled batch buffers, because a fresh 38 MB tensor per batch costs more in
// page faults than the normalization itself.
absl::StatusOr<at::Tensor> AssembleImages(const std::vector<Image>& images,
                                          const std::vector<float>& mean,
                                          const std::vector<float>& std, bool channels_last,
                                          at::Tensor out = at::Tensor());

// timm's mixup_target: [B] labels -> [B, K] soft targets.
at::Tensor MixTargets(const at::Tensor& labels, int64_t num_classes, double lam, double smoothing);

struct MixDecision {
  bool mixed = false;
  bool cutmix = false;
  double lam = 1.0;  // after the CutMix area correction
  int y0 = 0, y1 = 0, x0 = 0, x1 = 0;  // CutMix box [y0, y1) x [x0, x1)
};
// Draws timm's per-batch parameters for an image of size (h, w).
MixDecision DrawMix(const MixOptions& o, int h, int w, Rng& rng);
// Applies `d` in place to images [B, C, H, W] and returns the soft targets [B, K].
absl::StatusOr<at::Tensor> ApplyMix(const MixDecision& d, at::Tensor& images, const at::Tensor& labels,
                                    int64_t num_classes, double smoothing);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_BATCH_H_
