// ValidateOptions: every flag checked before any work, errors naming the flag.
#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convforever/train/op_profile.h"
#include "convforever/train/trainer.h"

namespace cf::train {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
}

absl::Status OneOf(absl::string_view flag, const std::string& value,
                   const std::set<std::string>& allowed) {
  if (allowed.count(value)) return absl::OkStatus();
  return Bad(flag, absl::StrCat("'", value, "' is not one of ", absl::StrJoin(allowed, "|")));
}

absl::Status ValidateData(const TrainerOptions& o) {
  if (absl::Status s = OneOf("data", o.data, {"fashion_mnist", "idx", "cifar10", "cifar100",
                                              "folder", "imagenet", "jsonl", "wds", "parquet", "synthetic"});
      !s.ok()) {
    return s;
  }
  if (o.data != "fashion_mnist" && o.data != "synthetic" && o.data_dir.empty()) {
    return Bad("data_dir", absl::StrCat("required for --data=", o.data));
  }
  if (o.image_size < 8) return Bad("image_size", "must be at least 8");
  if (o.channels != 0 && o.channels != 1 && o.channels != 3) return Bad("channels", "must be 0, 1 or 3");
  if (o.crop_pct <= 0 || o.crop_pct > 1) return Bad("crop_pct", "must be in (0, 1]");
  if (o.num_workers < 0) return Bad("num_workers", "must be >= 0");
  if (o.prefetch_batches < 1) return Bad("prefetch_batches", "must be >= 1");
  if (o.subset < 0) return Bad("subset", "must be >= 0");
  if (o.eval_fraction < 0 || o.eval_fraction >= 1) return Bad("eval_fraction", "must be in (0, 1), or 0 for none");
  if (o.eval_cache_mb < 0) return Bad("eval_cache_mb", "must be >= 0");
  if (o.train_samples < 0) return Bad("train_samples", "must be >= 0");
  if (o.random_crop_padding < 0) return Bad("random_crop_padding", "must be >= 0");
  if (o.random_crop_padding > 0 && o.random_resized_crop) {
    return Bad("random_crop_padding", "cannot be combined with --random_resized_crop");
  }
  for (auto [flag, p] : {std::pair{"random_erasing", o.random_erasing},
                         {"mixup_prob", o.mixup_prob}, {"mixup_switch_prob", o.mixup_switch_prob}}) {
    if (p < 0 || p > 1) return Bad(flag, "is a probability: must be in [0, 1]");
  }
  if (o.mixup < 0 || o.cutmix < 0) return Bad(o.mixup < 0 ? "mixup" : "cutmix", "must be >= 0");
  if (o.label_smoothing < 0 || o.label_smoothing >= 1) return Bad("label_smoothing", "must be in [0, 1)");
  return absl::OkStatus();
}

absl::Status ValidateSchedule(const TrainerOptions& o) {
  if (o.micro_batch_size < 1) return Bad("micro_batch_size", "must be >= 1");
  if (o.gradient_accumulation_steps < 1) return Bad("gradient_accumulation_steps", "must be >= 1");
  if (o.epochs <= 0 && o.max_steps <= 0) return Bad("epochs", "must be > 0 (or set --max_steps)");
  if (o.max_steps < 0) return Bad("max_steps", "must be >= 0");
  if (absl::Status s = OneOf("optimizer", o.optimizer, {"adamw", "sgd", "lion", "lamb"}); !s.ok()) return s;
  if (absl::Status s = OneOf("lr_scheduler_type", o.lr_scheduler_type,
                             {"constant", "cosine", "onecycle", "step", "linear"});
      !s.ok()) {
    return s;
  }
  if (!(o.lr > 0)) return Bad("lr", "must be > 0");
  if (o.min_lr < 0 || o.min_lr > o.lr) return Bad("min_lr", "must be in [0, --lr]");
  if (o.weight_decay < 0) return Bad("weight_decay", "must be >= 0");
  if (o.warmup_epochs < 0 || o.warmup_steps < 0) return Bad("warmup_epochs", "must be >= 0");
  if (o.gradient_clipping < 0) return Bad("gradient_clipping", "must be >= 0 (0 = off)");
  if (o.ema_decay < 0 || o.ema_decay >= 1) return Bad("ema_decay", "must be in [0, 1)");
  if (o.ema_warmup_gamma < 0) return Bad("ema_warmup_gamma", "must be >= 0 (0 = no warmup)");
  if (!(o.ema_warmup_power > 0)) return Bad("ema_warmup_power", "must be > 0");
  if (o.layer_decay <= 0 || o.layer_decay > 1) return Bad("layer_decay", "must be in (0, 1]");
  if (o.drop_path_rate < 0 || o.drop_path_rate >= 1) return Bad("drop_path_rate", "must be in [0, 1)");
  if (absl::Status s = OneOf("precision", o.precision, {"fp32", "bf16", "fp16"}); !s.ok()) return s;
  if (o.precision == "fp16" && o.device != "cuda") {
    return Bad("precision", "fp16 needs --device=cuda (use bf16 on CPU)");
  }
  return absl::OkStatus();
}

// --time_budget (time_budget.h): the run's length comes from the throughput measured in its first
// steps, which must then hold for the whole run, and the schedule must be one the plan can size.
absl::Status ValidateTimeBudget(const TrainerOptions& o) {
  if (o.time_budget_s == 0) return absl::OkStatus();
  if (!(o.time_budget_s > 0) || !std::isfinite(o.time_budget_s)) return Bad("time_budget", "must be > 0");
  if (!o.progressive_resize.empty()) {
    return Bad("time_budget", "cannot be combined with --progressive_resize: each stage's image size "
                              "and batch change the step time, so the first steps do not predict "
                              "the run (set --epochs or --max_steps instead)");
  }
  if (o.schedule_override && o.schedule_override->total_steps > 0) {
    return Bad("time_budget", absl::StrCat("the --deepspeed_config scheduler fixes the run at ",
                                           o.schedule_override->total_steps,
                                           " steps (total_num_steps); set it to \"auto\" to plan by time"));
  }
  return absl::OkStatus();
}

// --sync=diloco (convforever/distributed/diloco.h).
absl::Status ValidateDiLoCo(const TrainerOptions& o) {
  if (o.zero_stage > 0) {
    return Bad("zero_stage", "cannot be combined with --sync=diloco: ZeRO shards the optimizer "
                             "state of one step shared by all ranks, while DiLoCo's inner steps "
                             "are each rank's own (every rank keeps its whole inner optimizer)");
  }
  const int64_t h = o.diloco_inner_steps;
  if (h < 1) return Bad("diloco_inner_steps", "must be >= 1");
  if (o.diloco_fragments < 1) return Bad("diloco_fragments", "must be >= 1");
  if (o.diloco_fragments > h) {
    return Bad("diloco_fragments", absl::StrCat("must not exceed --diloco_inner_steps (", h,
                                                "): each fragment synchronises at its own step of every H"));
  }
  if (!(o.diloco_outer_lr > 0)) return Bad("diloco_outer_lr", "must be > 0");
  if (!(o.diloco_outer_momentum >= 0 && o.diloco_outer_momentum < 1)) {
    return Bad("diloco_outer_momentum", "must be in [0, 1)");
  }
  if (absl::Status s = OneOf("diloco_dtype", o.diloco_dtype, {"fp32", "bf16", "int8"}); !s.ok()) return s;
  if (o.diloco_int8_chunk < 1) return Bad("diloco_int8_chunk", "must be >= 1");
  if (o.checkpoint_every_steps > 0 && o.checkpoint_every_steps % h != 0) {
    return Bad("checkpoint_every_steps",
               absl::StrCat("must be a multiple of --diloco_inner_steps (", h, ") under --sync=diloco, "
                            "so that checkpoints hold the weights of an outer step (e.g. ",
                            std::max<int64_t>(h, o.checkpoint_every_steps / h * h), ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateLoop(const TrainerOptions& o) {
  if (absl::Status s = OneOf("device", o.device, {"cpu", "cuda"}); !s.ok()) return s;
  if (o.run_dir.empty()) return Bad("run_dir", "must not be empty");
  if (o.log_every_steps < 1) return Bad("log_every_steps", "must be >= 1");
  if (o.eval_every_steps < 0) return Bad("eval_every_steps", "must be >= 0");
  if (o.checkpoint_every_steps < 0) return Bad("checkpoint_every_steps", "must be >= 0");
  if (o.keep_checkpoints < 1) return Bad("keep_checkpoints", "must be >= 1");
  if (o.max_nonfinite_steps < 1) return Bad("max_nonfinite_steps", "must be >= 1");
  if (o.threads < 0) return Bad("threads", "must be >= 0 (0 = auto)");
  if (!o.profile_steps.empty()) {
    if (absl::Status s = ParseProfileSteps(o.profile_steps).status(); !s.ok()) return s;
  }
  if (o.depth != 0 && o.depth < 4) return Bad("depth", "a ConvNeXt needs at least 4 blocks (one per stage)");
  if (o.depth > 0 && o.model != "convforever") {
    return Bad("depth", "only applies to --model=convforever");
  }
  if (absl::Status s = OneOf("dist_backend", o.dist_backend, {"auto", "gloo", "nccl"}); !s.ok()) return s;
  if (o.zero_stage < 0 || o.zero_stage > 2) return Bad("zero_stage", "must be 0, 1 or 2");
  // Checked whatever the world size, so a recipe fails on the laptop before the cluster.
  if (o.zero_stage > 0 && o.optimizer == "lamb") {
    return Bad("optimizer", "lamb cannot run under --zero_stage > 0: LAMB's trust ratio needs "
                            "whole-tensor norms and a ZeRO shard holds pieces of tensors (use "
                            "adamw, sgd or lion, or --zero_stage=0)");
  }
  if (o.zero_offload_optimizer && o.zero_stage == 0) {
    return Bad("zero_offload_optimizer", "needs --zero_stage=1 or 2");
  }
  if (o.dist_timeout_s < 1) return Bad("dist_timeout_s", "must be >= 1");
  if (absl::Status s = OneOf("sync", o.sync, {"ddp", "powersgd", "diloco"}); !s.ok()) return s;
  if (o.sync == "powersgd") {
    if (o.zero_stage > 0) {
      return Bad("sync", "powersgd cannot be combined with --zero_stage > 0: ZeRO reduces (and "
                         "shards) the full gradients itself; use --zero_stage=0 with powersgd");
    }
    if (o.powersgd_rank < 1) return Bad("powersgd_rank", "must be >= 1");
    if (o.powersgd_start_iter < 0) return Bad("powersgd_start_iter", "must be >= 0");
    if (!(o.powersgd_min_compression_rate >= 0)) {
      return Bad("powersgd_min_compression_rate", "must be >= 0 (0 = compress every matrix)");
    }
  }
  if (o.sync == "diloco") {
    if (absl::Status s = ValidateDiLoCo(o); !s.ok()) return s;
  }
  if (!(o.dist_link_mbps >= 0)) return Bad("dist_link_mbps", "must be >= 0 (0 = no emulated link)");
  if (!(o.dist_link_latency_ms >= 0)) return Bad("dist_link_latency_ms", "must be >= 0");
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateOptions(const TrainerOptions& o) {
  if (absl::Status s = ValidateData(o); !s.ok()) return s;
  if (absl::Status s = ValidateSchedule(o); !s.ok()) return s;
  if (absl::Status s = ValidateTimeBudget(o); !s.ok()) return s;
  return ValidateLoop(o);
}

}  // namespace cf::train
