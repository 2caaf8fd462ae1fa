#include "convforever/train/evaluate.h"

#include <ATen/core/grad_mode.h>

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/base/autocast.h"
#include "convforever/train/loss.h"

namespace cf::train {

EvalResult EvalCounts::ToResult() const {
  EvalResult r;
  r.samples = samples;
  if (samples > 0) {
    r.loss = loss_sum / static_cast<double>(samples);
    r.top1 = static_cast<double>(top1) / static_cast<double>(samples);
    r.top5 = static_cast<double>(top5) / static_cast<double>(samples);
  }
  return r;
}

absl::StatusOr<EvalCounts> EvaluateModel(models::Model& model, data::Loader& loader,
                                         const EvaluateOptions& options) {
  const bool was_training = model.is_training();
  model.eval();
  EvalCounts counts;
  absl::Status status = loader.StartEpoch(options.epoch);
  try {
    at::NoGradGuard no_grad;
    base::AutocastGuard autocast(options.device.type(),
                                 options.precision == "fp16" ? at::kHalf : at::kBFloat16,
                                 /*enabled=*/options.precision != "fp32");
    while (status.ok()) {
      absl::StatusOr<std::optional<data::Batch>> next = loader.Next();
      if (!next.ok()) {
        status = next.status();
        break;
      }
      if (!next->has_value()) break;
      data::Batch& batch = **next;
      at::Tensor images = batch.images.to(options.device, /*non_blocking=*/true);
      if (options.channels_last) images = images.contiguous(at::MemoryFormat::ChannelsLast);
      const at::Tensor targets = batch.targets.to(options.device, /*non_blocking=*/true);
      const at::Tensor logits = model.forward(images).to(at::kFloat);
      const int64_t n = logits.size(0);
      counts.loss_sum += ClassificationLoss(logits, targets, 0.0).item<double>() * n;
      const TopKCounts correct = CountCorrect(logits, targets);
      counts.top1 += correct.top1;
      counts.top5 += correct.top5;
      counts.samples += n;
    }
  } catch (const c10::Error& e) {
    status = absl::InternalError(absl::StrCat("evaluation failed: ", e.what_without_backtrace()));
  }
  model.train(was_training);
  RETURN_IF_ERROR(status);
  return counts;
}

absl::StatusOr<EvalCounts> SumOverRanks(const EvalCounts& counts, distributed::Communicator* comm) {
  if (comm == nullptr) return counts;
  // Counts stay exact as doubles up to 2^53 samples.
  std::vector<double> v = {counts.loss_sum, static_cast<double>(counts.top1), static_cast<double>(counts.top5),
                           static_cast<double>(counts.samples)};
  RETURN_IF_ERROR(comm->AllReduceScalars(v, distributed::ReduceOp::kSum));
  EvalCounts sum;
  sum.loss_sum = v[0];
  sum.top1 = static_cast<int64_t>(v[1]);
  sum.top5 = static_cast<int64_t>(v[2]);
  sum.samples = static_cast<int64_t>(v[3]);
  return sum;
}

}  // namespace cf::train
