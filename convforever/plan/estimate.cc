#include "convforever/plan/estimate.h"

#include <algorithm>
#include <cmath>

namespace cf::plan {

double TrainFlopsPerImage(double forward_macs, bool gradient_checkpointing) {
  // 2 FLOPs per MAC; forward 1x, backward 2x, checkpointing's recompute 1x more.
  return 2.0 * forward_macs * (gradient_checkpointing ? 4.0 : 3.0);
}

double EvalFlopsPerImage(double forward_macs) { return 2.0 * forward_macs; }

int64_t EvalPasses(int64_t total_steps, int64_t steps_per_epoch, int64_t eval_every_steps) {
  if (total_steps <= 0) return 0;
  if (eval_every_steps > 0) {
    return total_steps / eval_every_steps + (total_steps % eval_every_steps != 0 ? 1 : 0);
  }
  if (steps_per_epoch <= 0) return 1;
  // Epoch ends at steps spe, 2 spe, ... strictly before the last step, then the final one.
  return (total_steps - 1) / steps_per_epoch + 1;
}

CommResult CommPadding(const CommInput& in) {
  CommResult r;
  if (in.gpus <= 1 || in.params <= 0) return r;
  const double n = in.gpus;
  r.bytes_per_gpu = 2.0 * (n - 1.0) / n * 4.0 * static_cast<double>(in.params) * in.bytes_scale;
  if (in.link_gbps <= 0) return r;
  r.comm_seconds = r.bytes_per_gpu / (in.link_gbps * 1e9 / 8.0);
  r.exposed_seconds =
      std::max(0.0, r.comm_seconds - (in.hidden_by_backward ? in.overlap_seconds : 0.0));
  if (in.step_compute_seconds > 0) r.padding = r.exposed_seconds / in.step_compute_seconds;
  return r;
}

SyncTraffic SyncTrafficOf(const std::string& sync, int gpus, double powersgd_fraction,
                          int64_t diloco_inner_steps, const std::string& diloco_dtype,
                          int64_t diloco_int8_chunk) {
  SyncTraffic t;
  if (sync == "powersgd") {
    t.bytes_scale = powersgd_fraction;
  } else if (sync == "diloco") {
    const double h = static_cast<double>(std::max<int64_t>(1, diloco_inner_steps));
    t.hidden_by_backward = false;
    if (diloco_dtype == "int8") {
      const double chunk = static_cast<double>(std::max<int64_t>(1, diloco_int8_chunk));
      t.bytes_scale = std::max(1, gpus) * (1.0 + 4.0 / chunk) / (8.0 * h);
    } else {
      t.bytes_scale = (diloco_dtype == "bf16" ? 0.5 : 1.0) / h;
    }
  }
  return t;
}

CostResult EstimateCost(const CostInput& in) {
  CostResult r;
  const int gpus = std::max(1, in.gpus);
  const int64_t per_step = std::max<int64_t>(1, in.micro_batch * in.accumulation * gpus);
  const int64_t steps = (in.train_samples + per_step - 1) / per_step;
  const double train_per_image = TrainFlopsPerImage(in.forward_macs, in.gradient_checkpointing);
  r.train_flops = train_per_image * static_cast<double>(in.train_samples);
  r.eval_flops = EvalFlopsPerImage(in.forward_macs) * static_cast<double>(in.eval_images);
  double step_seconds = 0;
  if (in.local) {
    step_seconds = in.step_seconds;
    r.train_seconds = static_cast<double>(steps) * step_seconds;
    r.eval_seconds = static_cast<double>(in.eval_images) / gpus * in.eval_seconds_per_image;
    r.startup_seconds = in.startup_seconds;
    if (step_seconds > 0) {
      r.achieved_flops_per_gpu =
          train_per_image * static_cast<double>(in.micro_batch * in.accumulation) / step_seconds;
    }
  } else {
    r.achieved_flops_per_gpu = in.peak_flops * in.utilization;
    if (r.achieved_flops_per_gpu > 0) {
      r.train_seconds = r.train_flops / (r.achieved_flops_per_gpu * gpus);
      r.eval_seconds = r.eval_flops / (r.achieved_flops_per_gpu * gpus);
    }
    step_seconds = steps > 0 ? r.train_seconds / static_cast<double>(steps) : 0;
  }
  // The last micro-batch's backward: 2 of its 3 forward-sized passes (3 of 4 with checkpointing).
  const double backward_share = in.gradient_checkpointing ? 0.75 : 2.0 / 3.0;
  CommInput c;
  c.params = in.params;
  c.gpus = gpus;
  c.link_gbps = in.link_gbps;
  c.step_compute_seconds = step_seconds;
  c.overlap_seconds = step_seconds / std::max<int64_t>(1, in.accumulation) * backward_share;
  c.bytes_scale = in.sync.bytes_scale;
  c.hidden_by_backward = in.sync.hidden_by_backward;
  r.comm = CommPadding(c);
  r.padding = r.comm.padding;
  r.wall_seconds = r.train_seconds * (1.0 + r.padding) + r.eval_seconds + r.startup_seconds;
  r.gpu_hours = r.wall_seconds * gpus / 3600.0;
  r.usd = r.gpu_hours * in.usd_per_hour;
  return r;
}

}  // namespace cf::plan
