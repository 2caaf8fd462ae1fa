#include "convforever/train/flags_config.h"

#include <cstdio>
#include <vector>

#include "absl/strings/match.h"
#include "convforever/base/status_macros.h"
#include "convforever/distributed/launch_env.h"
#include "convforever/optim/deepspeed_config.h"
#include "convforever/train/metrics.h"
#include "gflags/gflags.h"
#include "nlohmann/json.hpp"

namespace cf::train {

std::string FlagsAsJson() {
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  nlohmann::json j = nlohmann::json::object();
  for (const gflags::CommandLineFlagInfo& f : flags) {
    if (absl::StrContains(f.filename, "convforever/train/")) j[f.name] = f.current_value;
  }
  return StripSecrets(j).dump();
}

absl::Status ApplyDeepSpeedConfig(const std::string& path, TrainerOptions* o) {
  optim::DeepSpeedAutoValues flags;
  // The world size the run will have: the same launch environment RunSetup joins (torchrun,
  // SLURM, Open MPI, DeepSpeed's launcher), so "auto" batch sizes match the real job.
  ASSIGN_OR_RETURN(distributed::LaunchEnv env, distributed::ReadLaunchEnv(distributed::LaunchOverrides{}));
  flags.world_size = env.world_size;
  flags.micro_batch = o->micro_batch_size;
  flags.grad_accum = o->gradient_accumulation_steps;
  flags.lr = o->lr;
  flags.weight_decay = o->weight_decay;
  flags.beta1 = o->beta1;
  flags.beta2 = o->beta2;
  flags.eps = o->eps;
  if (o->warmup_steps > 0) flags.warmup_steps = o->warmup_steps;
  if (o->max_steps > 0) flags.total_steps = o->max_steps;
  flags.max_grad_norm = o->gradient_clipping;
  flags.fp16 = o->precision == "fp16";
  flags.bf16 = o->precision == "bf16";
  ASSIGN_OR_RETURN(optim::DeepSpeedConfig ds, optim::ParseDeepSpeedConfig(path, flags));
  o->micro_batch_size = ds.micro_batch_per_gpu;
  o->gradient_accumulation_steps = ds.gradient_accumulation_steps;
  if (ds.has_optimizer) {
    o->optimizer_override = ds.optimizer;
    o->optimizer = ds.optimizer.type;
    o->lr = ds.optimizer.lr;
    o->weight_decay = ds.optimizer.weight_decay;
  }
  if (ds.has_scheduler) o->schedule_override = ds.schedule;
  if (ds.fp16) {
    o->precision = "fp16";
    o->loss_scaler_override = ds.loss_scaler;
  } else if (ds.bf16) {
    o->precision = "bf16";
  }
  if (ds.gradient_clipping > 0) o->gradient_clipping = ds.gradient_clipping;
  o->zero_stage = ds.zero_stage;
  o->zero_offload_optimizer = ds.offload_optimizer_device == "cpu";
  if (ds.has_diloco) {  // ConvForever's own section: --sync=diloco, keys given win over the flags
    const optim::DeepSpeedDiLoCo& d = ds.diloco;
    o->sync = "diloco";
    o->diloco_inner_steps = d.inner_steps.value_or(o->diloco_inner_steps);
    o->diloco_outer_lr = d.outer_lr.value_or(o->diloco_outer_lr);
    o->diloco_outer_momentum = d.outer_momentum.value_or(o->diloco_outer_momentum);
    o->diloco_outer_nesterov = d.outer_nesterov.value_or(o->diloco_outer_nesterov);
    o->diloco_dtype = d.dtype.value_or(o->diloco_dtype);
    o->diloco_int8_chunk = d.int8_chunk.value_or(o->diloco_int8_chunk);
    o->diloco_fragments = static_cast<int>(d.fragments.value_or(o->diloco_fragments));
    o->diloco_overlap = d.overlap.value_or(o->diloco_overlap);
  }
  return absl::OkStatus();
}

void PrintSummary(const TrainerOptions& options, const TrainResult& result) {
  std::printf("\n%s after %lld steps", result.stopped_by_signal ? "stopped" : "finished",
              static_cast<long long>(result.steps));
  if (result.skipped_steps > 0) {
    std::printf(" (%lld skipped: non-finite)", static_cast<long long>(result.skipped_steps));
  }
  std::printf("\n");
  if (result.final_eval.samples > 0) {
    std::printf("test top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (%lld images)\n",
                100 * result.final_eval.top1, 100 * result.final_eval.top5, result.final_eval.loss,
                static_cast<long long>(result.final_eval.samples));
  }
  if (result.final_eval_ema.samples > 0) {
    std::printf("EMA  top-1 %.2f%%  top-5 %.2f%%\n", 100 * result.final_eval_ema.top1,
                100 * result.final_eval_ema.top5);
  }
  std::printf("best top-1 %.2f%%\n", 100 * result.best_top1);
  if (!result.comm_bytes.empty()) {
    int64_t sent = 0, ring = 0;
    for (const TrainResult::CommBytes& c : result.comm_bytes) {
      sent += c.payload_sent;
      ring += c.ring_sent;
    }
    std::printf("communication (%s): %.1f MB payload sent per rank, %.1f MB on a ring\n",
                options.sync.c_str(), sent / 1e6, ring / 1e6);
  }
  std::printf("checkpoint: %s\n", result.checkpoint_dir.c_str());
  std::printf("metrics:    %s (TensorBoard: tensorboard --logdir %s)\n",
              result.metrics_path.c_str(), options.run_dir.c_str());
  if (result.stopped_by_signal) {
    std::printf("resume with: tools/cf train <same flags> --resume=auto\n");
  }
  std::fflush(stdout);
}

}  // namespace cf::train
