#include "convforever/train/loss.h"

#include <algorithm>

namespace cf::train {

at::Tensor ClassificationLoss(const at::Tensor& logits, const at::Tensor& targets,
                              double label_smoothing) {
  const at::Tensor z = logits.to(at::kFloat);
  if (targets.dim() == 1) {
    return at::cross_entropy_loss(z, targets, /*weight=*/{}, at::Reduction::Mean,
                                  /*ignore_index=*/-100, label_smoothing);
  }
  return -(targets.to(at::kFloat) * at::log_softmax(z, /*dim=*/-1)).sum(-1).mean();
}

TopKCounts CountCorrect(const at::Tensor& logits, const at::Tensor& targets) {
  const at::Tensor labels = targets.dim() == 1 ? targets : targets.argmax(-1);
  const int64_t k = std::min<int64_t>(5, logits.size(-1));
  const at::Tensor topk = std::get<1>(logits.topk(k, /*dim=*/-1));  // [B, k]
  const at::Tensor hits = topk.eq(labels.unsqueeze(-1));             // [B, k]
  TopKCounts counts;
  counts.top1 = hits.select(-1, 0).sum().item<int64_t>();
  counts.top5 = hits.any(-1).sum().item<int64_t>();
  return counts;
}

}  // namespace cf::train
