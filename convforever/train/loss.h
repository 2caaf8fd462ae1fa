// Classification losses used by the trainer.
//
// ClassificationLoss(logits [B, K], targets, label_smoothing) dispatches on the targets:
//   * [B] int64 class ids: cross-entropy with label smoothing, as torch.nn.CrossEntropyLoss
//     (label_smoothing=eps): the target distribution is (1-eps)*onehot + eps/K;
//   * [B, K] float soft targets (MixUp/CutMix already folded in smoothing, as timm's
//     SoftTargetCrossEntropy expects): mean over the batch of -sum_k t_k * log_softmax(z)_k.
// Returns a scalar in float32 whatever the logits' dtype (bf16/fp16 logits are upcast first, so
// the log-sum-exp is computed in float32).
#ifndef CONVFOREVER_TRAIN_LOSS_H_
#define CONVFOREVER_TRAIN_LOSS_H_

#include <cstdint>

#include <ATen/ATen.h>

namespace cf::train {

at::Tensor ClassificationLoss(const at::Tensor& logits, const at::Tensor& targets,
                              double label_smoothing);

// Number of rows whose target class is among the top-k logits. Soft targets use their argmax.
// Returns {top1, top5} counts (top5 uses min(5, K)).
struct TopKCounts {
  int64_t top1 = 0;
  int64_t top5 = 0;
};
TopKCounts CountCorrect(const at::Tensor& logits, const at::Tensor& targets);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_LOSS_H_
