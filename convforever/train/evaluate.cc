#include "convforever/train/evaluate.h"

#include <ATen/core/grad_mode.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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

absl::StatusOr<double> TimeEvalForward(models::Model& model, const EvaluateOptions& options,
                                       int64_t batch, int64_t channels, int64_t size) {
  const bool was_training = model.is_training();
  model.eval();
  absl::StatusOr<double> seconds;
  try {
    at::NoGradGuard no_grad;
    base::AutocastGuard autocast(options.device.type(),
                                 options.precision == "fp16" ? at::kHalf : at::kBFloat16,
                                 /*enabled=*/options.precision != "fp32");
    at::Tensor images = at::zeros({batch, channels, size, size}, at::TensorOptions().device(options.device));
    if (options.channels_last) images = images.contiguous(at::MemoryFormat::ChannelsLast);
    // .item() waits for the device, so each pass is timed to its end.
    (void)model.forward(images).to(at::kFloat).sum().item<double>();
    constexpr int kTimed = 2;
    const absl::Time start = absl::Now();
    for (int i = 0; i < kTimed; ++i) (void)model.forward(images).to(at::kFloat).sum().item<double>();
    seconds = absl::ToDoubleSeconds(absl::Now() - start) / kTimed;
  } catch (const c10::Error& e) {
    seconds = absl::InternalError(absl::StrCat("timing an evaluation pass failed: ", e.what_without_backtrace()));
  }
  model.train(was_training);
  return seconds;
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
