// The training loop: model + optimizer + data + checkpoints + metrics, from options to a result.
//
// Train() owns the step counter. One optimizer step = `gradient_accumulation_steps` micro-batches
// of `micro_batch_size` (per rank); the loss of each micro-batch is divided by the accumulation
// count so the accumulated gradient equals the gradient of the mean loss over the global batch.
// Gradients are clipped once per optimizer step, on the summed (and, with several ranks, averaged)
// gradients. A non-finite loss skips its step (counted); `max_nonfinite_steps` in a row abort.
//
// Checkpoints hold everything needed for an exact resume (weights, optimizer, schedule step, loss
// scaler, EMA, data-loader position, RNG states, the options): a run killed at any point and
// resumed with `resume = "auto"` produces the same per-step losses as an uninterrupted run on CPU.
// SIGINT/SIGTERM (convforever/base/signals) finish the current step, checkpoint, and return with
// `stopped_by_signal`.
//
// TrainerOptions holds plain values; the trainer maps them to the models/optim/data libraries'
// own Options. Nothing here reads flags: main.cc maps gflags (and recipes) to TrainerOptions.
#ifndef CONVFOREVER_TRAIN_TRAINER_H_
#define CONVFOREVER_TRAIN_TRAINER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/optim/loss_scaler_options.h"
#include "convforever/optim/optimizer_options.h"
#include "convforever/optim/schedule.h"
#include "convforever/train/time_budget.h"

namespace cf::train {

struct TrainerOptions {
  // --- Model (convforever/models registry) ---
  std::string model = "convnext_nano_fmnist";
  int depth = 0;                       // the "convforever" family: total block count
  std::vector<int64_t> widths;         // optional stage widths
  double width_multiplier = 1.0;
  int stem_stride = 0;                 // 0 = the model's default
  double drop_path_rate = 0.0;
  double layer_scale_init = 1e-6;
  bool gradient_checkpointing = false;
  bool channels_last = false;

  // --- Data (convforever/data) ---
  std::string data = "fashion_mnist";  // fashion_mnist|idx|cifar10|cifar100|folder|imagenet|jsonl|wds|synthetic
  std::string data_dir;                // root, file or URL pattern; default per data kind
  std::string eval_data_dir;           // optional separate eval location
  double eval_fraction = 0;            // (0, 1): evaluate on this fraction of data_dir, held out by key
  int64_t eval_cache_mb = 1024;        // jsonl: keep the eval set's downloaded bytes up to this size
  std::string class_list;              // one class name per line (jsonl/wds string labels)
  int64_t wds_epoch_samples = 0;       // wds: samples per rank per epoch (0: from train_samples)
  int64_t train_samples = 0;           // wds: samples in the training set, all ranks (0 = count once, cached)
  int64_t subset = 0;                  // use only the first N training samples (0 = all)
  int64_t synthetic_samples = 2048;
  int64_t synthetic_classes = 10;
  int64_t image_size = 28;
  int channels = 0;                    // 0 = the data's own channel count
  double crop_pct = 0.875;
  std::string progressive_resize;      // "epoch:size[:batch],..." e.g. "0:64,10:128,20:224"
  int num_workers = 2;
  int prefetch_batches = 4;
  int64_t random_crop_padding = 0;     // small-image random crop (pixels of padding), 0 = off
  bool random_resized_crop = false;
  bool hflip = true;
  double color_jitter = 0.0;
  std::string randaugment;             // "n/m", e.g. "2/9"; empty = off
  double random_erasing = 0.0;
  double mixup = 0.0;
  double cutmix = 0.0;
  double mixup_prob = 1.0;
  double mixup_switch_prob = 0.5;
  double label_smoothing = 0.0;

  // --- Batch and schedule ---
  int64_t micro_batch_size = 128;
  int64_t gradient_accumulation_steps = 1;
  double epochs = 1;
  int64_t max_steps = 0;               // > 0 stops after this many optimizer steps
  // > 0: the run's length is planned from the measured throughput to end within this many
  // seconds of wall time over all resumes (time_budget.h); epochs / max_steps are then the cap.
  double time_budget_s = 0;
  std::string optimizer = "adamw";     // adamw|sgd|lion|lamb
  double lr = 1e-3;
  double min_lr = 0.0;
  double weight_decay = 0.05;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double momentum = 0.9;
  bool nesterov = false;
  double layer_decay = 1.0;            // ConvNeXt layer-wise LR decay (1 = off)
  std::string lr_scheduler_type = "cosine";  // constant|cosine|onecycle|step
  double warmup_epochs = 0;
  int64_t warmup_steps = 0;            // wins over warmup_epochs when > 0
  double onecycle_pct_start = 0.25;
  double onecycle_div_factor = 25;
  double onecycle_final_div_factor = 1e4;
  double step_decay_epochs = 30;
  double step_decay_rate = 0.1;
  double gradient_clipping = 0.0;      // global-norm clip; 0 = off
  double ema_decay = 0.0;              // 0 = no EMA
  // timm's EMA decay warmup: decay_t = min(ema_decay, 1 - (1 + t / gamma)^-power) (optim/ema.h);
  // gamma > 0 turns it on (timm's default 1.0), power is timm's 2/3 unless set.
  double ema_warmup_gamma = 0.0;
  double ema_warmup_power = 2.0 / 3.0;
  std::string precision = "fp32";      // fp32|bf16|fp16
  double loss_scale_init = 65536;      // fp16 dynamic loss scaler
  int loss_scale_window = 2000;

  // --- Loop, outputs, resume ---
  std::string run_dir = "runs/default";
  int64_t log_every_steps = 50;
  int64_t eval_every_steps = 0;        // 0 = at the end of every epoch
  int64_t checkpoint_every_steps = 0;  // 0 = at the end of every epoch
  int keep_checkpoints = 3;
  std::string resume;                  // "" | "auto" | path of a checkpoint directory
  // Fine-tuning: start from these weights (models/init_from.h: timm/transformers/torchvision
  // safetensors or torch.save file, or a checkpoint directory). Not used when a checkpoint is
  // resumed (explicit --resume=DIR: not even read).
  std::string init_from;
  uint64_t seed = 0;
  int threads = 0;                     // LibTorch intra-op threads; 0 = chosen for the machine
  std::string device = "cpu";          // cpu|cuda
  int max_nonfinite_steps = 5;
  bool tensorboard = true;
  std::string profile_steps;           // "A:B": per-op profile of steps [A, B) (op_profile.h)
  std::string trackio_project;         // empty = no Trackio store
  std::string run_name;
  std::string config_json;             // the flags as JSON, stored in checkpoints and metrics
  std::string hub_repo;                // ORG/NAME: push snapshots to this Hub model repo
  int64_t upload_every = 0;            // snapshot every N steps (0 = only the final one)
  bool hub_private = true;

  // --- Set from a DeepSpeed config (--deepspeed_config); they win over the flags above ---
  std::optional<optim::OptimizerOptions> optimizer_override;
  std::optional<optim::ScheduleOptions> schedule_override;  // total/epoch steps filled in if 0
  std::optional<optim::LossScalerOptions> loss_scaler_override;

  // --- Data parallel (convforever/distributed); world_size 1 = single process ---
  std::string dist_backend = "auto";   // auto|gloo|nccl
  int zero_stage = 0;                  // 0, 1 or 2 (ignored with one rank)
  bool zero_offload_optimizer = false; // ZeRO: shard master weights + optimizer state on the CPU
  int64_t dist_timeout_s = 300;
  // How ranks synchronise: "ddp" (gradients all-reduced every step), "powersgd" (matrix
  // gradients all-reduced as rank-r factors with error feedback, convforever/distributed/powersgd.h)
  // or "diloco" (local inner steps, an outer step every diloco_inner_steps;
  // convforever/distributed/diloco.h).
  std::string sync = "ddp";
  int powersgd_rank = 4;
  int64_t powersgd_start_iter = 10;       // plain all-reduce for the first N optimizer steps
  bool powersgd_warm_start = true;
  double powersgd_min_compression_rate = 2.0;  // compress when n*m >= rate * r*(n+m)
  bool powersgd_error_feedback = true;
  int64_t diloco_inner_steps = 50;     // H
  double diloco_outer_lr = 0.7;
  double diloco_outer_momentum = 0.9;
  bool diloco_outer_nesterov = true;
  std::string diloco_dtype = "fp32";   // pseudo-gradients on the wire: fp32|bf16|int8
  int64_t diloco_int8_chunk = 4096;    // int8: elements per fp32 scale
  int diloco_fragments = 1;            // Streaming DiLoCo: fragments synchronised in turn
  bool diloco_overlap = false;         // apply each outer step one inner step after launching it
  // An emulated slow link under every collective (convforever/distributed/link_model.h); 0 = off.
  double dist_link_mbps = 0;
  double dist_link_latency_ms = 0;
};

struct EvalResult {
  double loss = 0;
  double top1 = 0;  // fraction in [0, 1]
  double top5 = 0;
  int64_t samples = 0;
};

struct TrainResult {
  int64_t steps = 0;
  int64_t skipped_steps = 0;
  EvalResult final_eval;
  EvalResult final_eval_ema;
  double best_top1 = 0;
  std::string checkpoint_dir;   // newest complete checkpoint
  std::string metrics_path;     // metrics.jsonl
  bool stopped_by_signal = false;
  std::vector<double> step_losses;  // mean training loss of each optimizer step run here
  // What summary.json reports besides the above (filled in when the loop ends).
  int64_t total_steps = 0;      // the planned step count
  int world_size = 1;
  int64_t samples_seen = 0;     // steps x micro batch x accumulation x ranks, resumes included
  int64_t params = 0;
  double gmacs_per_image = 0;   // forward, one image at the training image size
  double train_seconds = 0;     // loop wall time over all resumes (setup, evals, checkpoints)
  std::optional<BudgetPlan> budget_plan;  // --time_budget: the plan the run followed
  // Bytes this rank's collectives moved in this process (not before a resume), by tensor kind
  // (convforever/distributed/byte_ledger.h); empty with one rank.
  struct CommBytes {
    std::string kind;  // "gradient", "parameter", "control", ...
    int64_t payload_sent = 0, payload_received = 0, ring_sent = 0, ring_received = 0;
    int64_t collectives = 0;
  };
  std::vector<CommBytes> comm_bytes;
};

// Process-wide settings every mode applies first: the allocator's reuse of freed memory, and
// LibTorch's intra-op threads (options.threads, OMP_NUM_THREADS, or this rank's share of the
// cores among the ranks on this machine less the data workers; threads.h), logged with the reason,
// and a log line on the CPU level our kernels use and what the CPU has (base/cpu_isa.h).
void ConfigureRuntime(const TrainerOptions& options);

// Validates every option up front; an impossible combination is an error naming the option.
absl::Status ValidateOptions(const TrainerOptions& options);

absl::StatusOr<TrainResult> Train(const TrainerOptions& options);

// Evaluate mode: top-1/top-5 (and loss) of a checkpoint's weights on the options' eval data.
// `checkpoint` is a checkpoint directory, "latest" (newest complete one in run_dir) or "best"
// (the one run_dir's best.json points to). With `use_ema`, the checkpoint's EMA weights.
absl::StatusOr<EvalResult> EvaluateCheckpoint(const TrainerOptions& options,
                                              const std::string& checkpoint, bool use_ema);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_TRAINER_H_
