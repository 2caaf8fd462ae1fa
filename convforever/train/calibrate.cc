#include "convforever/train/calibrate.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/base/autocast.h"
#include "convforever/base/status_macros.h"
#include "convforever/plan/measure.h"
#include "convforever/train/loss.h"

namespace cf::train {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}
void Sync(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

// Micro-batches for calibration: the training loader's own when the data is here (its worker
// threads then compete for the cores as they do in training, and decoding is in the time), a
// synthetic batch of the recipe's shape otherwise.
class CalibrationBatches {
 public:
  CalibrationBatches(RunSetup& run, bool real) : run_(run), real_(real) {
    const TrainerOptions& o = run.options();
    const auto on = at::TensorOptions().device(run.device());
    images_ = at::randn({o.micro_batch_size, run.train_loader().channels(), o.image_size, o.image_size}, on);
    if (o.channels_last) images_ = images_.contiguous(at::MemoryFormat::ChannelsLast);
    targets_ = at::randint(run.model().num_classes(), {o.micro_batch_size}, on.dtype(at::kLong));
  }
  absl::Status Start() { return real_ ? run_.StartEpoch(0) : absl::OkStatus(); }
  absl::StatusOr<StepBatch> Next() {
    if (!real_) return StepBatch{images_, targets_, false};
    ASSIGN_OR_RETURN(std::optional<StepBatch> batch, run_.NextBatch());
    if (!batch) {  // a short epoch: start the next one
      RETURN_IF_ERROR(run_.StartEpoch(run_.epoch() + 1));
      ASSIGN_OR_RETURN(batch, run_.NextBatch());
      if (!batch) return absl::InternalError("calibration: the training loader gives no batches");
    }
    return *std::move(batch);
  }
  const at::Tensor& synthetic_images() const { return images_; }

 private:
  RunSetup& run_;
  bool real_;
  at::Tensor images_, targets_;
};

// Forward + loss + backward for every micro-batch, then the trainer's ApplyGradients (clip,
// optimizer step, EMA, loss scaler): Trainer::RunOneStep, timed from the first batch's fetch.
absl::StatusOr<double> TimeTrainStep(RunSetup& run, CalibrationBatches& batches, int64_t step) {
  const TrainerOptions& o = run.options();
  const auto start = Clock::now();
  for (int64_t micro = 0; micro < o.gradient_accumulation_steps; ++micro) {
    ASSIGN_OR_RETURN(StepBatch batch, batches.Next());
    run.SetGradientSync(micro + 1 == o.gradient_accumulation_steps);
    RETURN_IF_ERROR(run.ForwardBackward(batch, o.gradient_accumulation_steps, step).status());
  }
  RETURN_IF_ERROR(run.ApplyGradients(step, /*loss_finite=*/true).status());
  Sync(run.device());
  return Since(start);
}

absl::StatusOr<double> TimeEvalBatch(RunSetup& run, const at::Tensor& images) {
  const TrainerOptions& o = run.options();
  const auto start = Clock::now();
  try {
    at::NoGradGuard no_grad;
    base::AutocastGuard autocast(run.device().type(),
                                 o.precision == "fp16" ? at::kHalf : at::kBFloat16,
                                 o.precision != "fp32");
    at::Tensor logits = run.model().forward(images);
    (void)logits.argmax(1).sum().item<int64_t>();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("calibration eval: ", e.what_without_backtrace()));
  }
  return Since(start);
}

}  // namespace

absl::StatusOr<Calibration> Calibrate(RunSetup& run, const CalibrationOptions& options) {
  const TrainerOptions& o = run.options();
  Calibration c;
  const c10::Device device = run.device();
  CalibrationBatches batches(run, options.real_data);
  RETURN_IF_ERROR(batches.Start());
  const at::Tensor& images = batches.synthetic_images();
  std::vector<double> steps;
  const int warmup = std::max(0, options.warmup_steps);
  for (int i = 0; i < warmup + std::max(1, options.steps); ++i) {
    ASSIGN_OR_RETURN(double seconds, TimeTrainStep(run, batches, i));
    if (i >= warmup) steps.push_back(seconds);
  }
  c.step_seconds = Median(steps);
  std::vector<double> evals;
  run.model().eval();
  for (int i = 0; i < warmup + std::max(1, options.steps); ++i) {
    ASSIGN_OR_RETURN(double seconds, TimeEvalBatch(run, images));
    if (i >= warmup) evals.push_back(seconds);
  }
  run.model().train();
  c.eval_seconds_per_image = Median(evals) / static_cast<double>(o.micro_batch_size);
  c.achieved_flops = options.train_flops_per_image *
                     static_cast<double>(o.micro_batch_size * o.gradient_accumulation_steps) /
                     c.step_seconds;
  if (device.is_cpu()) {
    ASSIGN_OR_RETURN(c.device_peak_flops, plan::MatmulFlops(device, at::kFloat, 1024, 5));
    c.device_peak_source = absl::StrFormat("measured fp32 1024^3 matmul, %d thread(s)",
                                           at::get_num_threads());
  } else {
    if (options.cuda_gpu == nullptr) {
      return absl::InvalidArgumentError(
          "--calibrate on --device=cuda needs this GPU's table row: pass --calibrate_gpu=NAME");
    }
    ASSIGN_OR_RETURN(c.device_peak_flops, plan::PeakFlops(*options.cuda_gpu, o.precision));
    c.device_peak_source = absl::StrCat(options.cuda_gpu->name, " datasheet");
  }
  c.utilization = c.achieved_flops / c.device_peak_flops;
  return c;
}

}  // namespace cf::train
