// The trainer binary: gflags (a recipe is a --flagfile; later flags override it) -> TrainerOptions
// -> Train(). Run as `tools/cf train [--recipe=NAME] [flags]`.
#include <cstdio>
#include <string>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convforever/base/signals.h"
#include "convforever/base/status_macros.h"
#include "convforever/train/estimate_mode.h"
#include "convforever/train/flags_config.h"
#include "convforever/train/lr_finder.h"
#include "convforever/train/preflight.h"
#include "convforever/train/time_budget.h"
#include "convforever/train/trainer.h"
#include "convforever/base/cli_help.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

// Model
DEFINE_string(model, "convnext_nano_fmnist", "model name in the registry (`bazel run //convforever/models:models` lists them)");
DEFINE_int32(depth, 0, "total ConvNeXt block count for --model=convforever (the sweep tables' approx_num_layers)");
DEFINE_string(widths, "", "comma-separated stage widths (default: the model's)");
DEFINE_double(width_multiplier, 1.0, "scales the default stage widths");
DEFINE_int32(stem_stride, 0, "stem stride (0 = model default; 1 or 2 for 28x28/32x32 images)");
DEFINE_double(drop_path_rate, 0.0, "stochastic depth rate, rising linearly over blocks");
DEFINE_double(layer_scale_init, 1e-6, "ConvNeXt layer scale init");
DEFINE_bool(enable_gradient_checkpointing, false, "recompute activations per stage in backward");
DEFINE_bool(channels_last, false, "NHWC memory format");
// Data
DEFINE_string(data, "fashion_mnist", "fashion_mnist|idx|cifar10|cifar100|folder|imagenet|jsonl|wds|parquet|synthetic (parquet: a Hugging Face dataset's Parquet files: repo folder, file, pattern or URL)");
DEFINE_string(data_dir, "", "dataset root, file or URL pattern (default per --data)");
DEFINE_string(eval_data_dir, "", "separate evaluation data location (default: the data's test split)");
DEFINE_double(eval_fraction, 0, "evaluate on this fraction (0 < F < 1) of --data_dir, held out from "
              "training by a hash of each sample's key (for data without a test split: jsonl, wds, "
              "parquet, a flat image folder)");
DEFINE_int64(eval_cache_mb, 1024, "jsonl: keep the evaluation set's downloaded images in memory up to "
             "this many MiB, so later evaluations download nothing (0 = no cache)");
DEFINE_int64(wds_epoch_samples, 0, "--data=wds: training samples per rank per epoch (wins over --train_samples; 0 = from --train_samples or the shards)");
DEFINE_int64(train_samples, 0, "--data=wds: samples in the whole training set, all ranks (0 = count the shards once, cached)");
DEFINE_string(class_list, "", "class names, one per line, line = class id (jsonl/wds string labels)");
DEFINE_int64(subset, 0, "use only the first N training samples (0 = all)");
DEFINE_int64(synthetic_samples, 2048, "--data=synthetic: samples per epoch");
DEFINE_int64(synthetic_classes, 10, "--data=synthetic: classes");
DEFINE_int64(image_size, 28, "training image size (square)");
DEFINE_int32(channels, 0, "input channels (0 = the data's own; 3 converts grayscale to RGB)");
DEFINE_double(crop_pct, 0.875, "eval center-crop fraction (resize shorter side to size/crop_pct)");
DEFINE_string(progressive_resize, "", "image size by epoch, \"epoch:size[:batch],...\" e.g. \"0:64,10:128,20:224\"");
DEFINE_int32(num_workers, 2, "data decode/augment threads");
DEFINE_int32(prefetch_batches, 4, "ready batches kept ahead");
DEFINE_int64(random_crop_padding, 0, "small-image random crop with this zero padding (0 = off)");
DEFINE_bool(random_resized_crop, false, "RandomResizedCrop(scale 0.08-1) for training");
DEFINE_bool(hflip, true, "random horizontal flip");
DEFINE_double(color_jitter, 0.0, "color jitter strength (0 = off)");
DEFINE_string(randaugment, "", "RandAugment \"n/m\", e.g. \"2/9\" (empty = off)");
DEFINE_double(random_erasing, 0.0, "random erasing probability");
DEFINE_double(mixup, 0.0, "MixUp alpha (0 = off)");
DEFINE_double(cutmix, 0.0, "CutMix alpha (0 = off)");
DEFINE_double(mixup_prob, 1.0, "probability of applying MixUp/CutMix to a batch");
DEFINE_double(mixup_switch_prob, 0.5, "probability of CutMix instead of MixUp when both are on");
DEFINE_double(label_smoothing, 0.0, "label smoothing");
// Batch and schedule
DEFINE_int64(micro_batch_size, 128, "samples per forward/backward per rank (the sweep tables' per_device_train_batch_size)");
DEFINE_int64(gradient_accumulation_steps, 1, "micro-batches per optimizer step");
DEFINE_double(epochs, 1, "training epochs (fractional allowed)");
DEFINE_int64(max_steps, 0, "stop after this many optimizer steps (0 = by --epochs)");
DEFINE_string(time_budget, "", "wall-clock budget of the whole run, over resumes (90s, 8m, 1h30m, 1.5h): the first steps are timed and the run's length planned so that training, evaluations, checkpoints and the final evaluation end within it, with the complete lr schedule over the planned steps; --epochs / --max_steps stay the cap (the shorter wins); empty = off");
DEFINE_string(optimizer, "adamw", "adamw|sgd|lion|lamb");
DEFINE_double(lr, 1e-3, "peak learning rate (the sweep tables' learning_rate)");
DEFINE_double(min_lr, 0.0, "final learning rate of the cosine schedule");
DEFINE_double(weight_decay, 0.05, "decoupled weight decay (not applied to norms, biases, gamma)");
DEFINE_double(beta1, 0.9, "Adam/Lion beta1");
DEFINE_double(beta2, 0.999, "Adam/Lion beta2");
DEFINE_double(eps, 1e-8, "Adam epsilon");
DEFINE_double(momentum, 0.9, "SGD momentum");
DEFINE_bool(nesterov, false, "SGD Nesterov momentum");
DEFINE_double(layer_decay, 1.0, "layer-wise LR decay for ConvNeXt fine-tuning (1 = off)");
DEFINE_string(lr_scheduler_type, "cosine", "constant|cosine|onecycle|step");
DEFINE_double(warmup_epochs, 0, "linear warmup length in epochs");
DEFINE_int64(warmup_steps, 0, "linear warmup length in steps (wins over --warmup_epochs)");
DEFINE_double(onecycle_pct_start, 0.25, "one-cycle: fraction of steps rising");
DEFINE_double(onecycle_div_factor, 25, "one-cycle: initial lr = lr / div_factor");
DEFINE_double(onecycle_final_div_factor, 1e4, "one-cycle: final lr = initial lr / final_div_factor");
DEFINE_double(step_decay_epochs, 30, "step schedule: epochs between decays");
DEFINE_double(step_decay_rate, 0.1, "step schedule: decay factor");
DEFINE_double(gradient_clipping, 0.0, "clip the global gradient norm to this (0 = off)");
DEFINE_double(ema_decay, 0.0, "EMA of weights with this decay (0 = off)");
DEFINE_double(ema_warmup_gamma, 0.0,
              "EMA decay warmup as timm's ModelEmaV3: decay_t = min(--ema_decay, "
              "1 - (1 + t / gamma)^-power); > 0 turns it on (timm's default 1.0), 0 = off");
DEFINE_double(ema_warmup_power, 2.0 / 3.0, "EMA decay warmup power (timm's default 2/3)");
DEFINE_int64(ema_warmup_steps, 0, "removed: it was the warmup gamma; use --ema_warmup_gamma");
DEFINE_string(precision, "fp32", "fp32|bf16|fp16 (fp16 uses the dynamic loss scaler; CUDA only)");
DEFINE_bool(eval_only, false, "evaluate --checkpoint on the eval data instead of training");
DEFINE_string(checkpoint, "latest", "--eval_only: a checkpoint directory, \"latest\" or \"best\" (in --run_dir)");
DEFINE_bool(eval_ema, false, "--eval_only: evaluate the checkpoint's EMA weights");
DEFINE_string(deepspeed_config, "", "DeepSpeed JSON config; \"auto\" values come from these flags");
// Loop, outputs, resume
DEFINE_string(run_dir, "runs/default", "checkpoints, metrics.jsonl, TensorBoard events");
DEFINE_int64(log_every_steps, 50, "metrics every N optimizer steps");
DEFINE_int64(eval_every_steps, 0, "evaluate every N steps (0 = every epoch)");
DEFINE_int64(checkpoint_every_steps, 0, "checkpoint every N steps (0 = every epoch)");
DEFINE_int32(keep_checkpoints, 3, "keep the newest N checkpoints (plus the best)");
DEFINE_string(resume, "", "\"auto\" = newest complete checkpoint in --run_dir, or a checkpoint directory");
DEFINE_string(init_from, "", "fine-tune from these weights: timm/transformers/torchvision .safetensors or .pth state dict, or a checkpoint dir (head re-initialised if the class count differs; ignored on --resume)");
DEFINE_uint64(seed, 0, "random seed (data order, augmentation, init)");
DEFINE_int32(threads, 0, "LibTorch intra-op threads (0 = OMP_NUM_THREADS if set, else this rank's share of the cores among the local ranks, less the data workers)");
DEFINE_string(device, "cpu", "cpu|cuda");
DEFINE_int32(max_nonfinite_steps, 5, "abort after this many non-finite steps in a row");
DEFINE_string(profile_steps, "", "FIRST:END: profile steps [FIRST, END) with LibTorch's profiler: RUN_DIR/profile/trace.json (Chrome trace) and ops.json (self time per op), the top ops logged");
DEFINE_bool(tensorboard, true, "write TensorBoard event files into --run_dir");
DEFINE_string(trackio_project, "", "also log to the Trackio store of this project");
DEFINE_string(hub_repo, "", "ORG/NAME: commit snapshots to this Hugging Face model repo (token from HF_TOKEN or ~/.cache/huggingface/token)");
DEFINE_int64(upload_every, 0, "--hub_repo: snapshot every N steps (0 = only at the end)");
DEFINE_bool(hub_private, true, "--hub_repo: create the repo private");
DEFINE_string(run_name, "", "run name for metrics stores (default: the run directory's name)");
// LR range test
DEFINE_bool(lr_finder, false, "run the LR range test with these flags instead of training: writes lr_finder.csv/.json to --run_dir and prints a suggested --lr; the weights are not saved");
DEFINE_int64(lr_finder_steps, 100, "--lr_finder: optimizer steps of the sweep (it stops early when the loss diverges)");
DEFINE_double(lr_finder_start_lr, 1e-7, "--lr_finder: lr of the first step");
DEFINE_double(lr_finder_end_lr, 10, "--lr_finder: lr of the last step (rising geometrically)");
// Distributed
DEFINE_string(dist_backend, "auto", "auto|gloo|nccl");
DEFINE_int32(zero_stage, 0, "ZeRO stage 0, 1 or 2 (or from --deepspeed_config)");
DEFINE_bool(zero_offload_optimizer, false,
            "ZeRO: keep the shard's master weights and optimizer state on the CPU (or from "
            "--deepspeed_config zero_optimization.offload_optimizer.device=cpu)");
DEFINE_int64(dist_timeout_s, 300, "collective timeout in seconds");
DEFINE_string(sync, "ddp", "how ranks synchronise: ddp (all-reduce gradients every step), powersgd (low-rank compressed gradients with error feedback) or diloco (each rank takes --diloco_inner_steps local steps, then an outer step on the averaged weight deltas)");
DEFINE_int32(powersgd_rank, 4, "--sync=powersgd: rank r of each gradient matrix's approximation");
DEFINE_int64(powersgd_start_iter, 10, "--sync=powersgd: plain all-reduce for the first N optimizer steps");
DEFINE_bool(powersgd_warm_start, true, "--sync=powersgd: start each step's power iteration from the last step's Q");
DEFINE_double(powersgd_min_compression_rate, 2, "--sync=powersgd: compress an n x m gradient only when n*m >= rate * r*(n+m) (0 = every matrix)");
DEFINE_bool(powersgd_error_feedback, true, "--sync=powersgd: carry what compression dropped into the next step");
DEFINE_int64(diloco_inner_steps, 50, "--sync=diloco: inner steps H between outer steps (checkpoints and --checkpoint_every_steps fall on multiples of H)");
DEFINE_double(diloco_outer_lr, 0.7, "--sync=diloco: outer SGD learning rate");
DEFINE_double(diloco_outer_momentum, 0.9, "--sync=diloco: outer SGD momentum (0 = none)");
DEFINE_bool(diloco_outer_nesterov, true, "--sync=diloco: Nesterov outer momentum");
DEFINE_string(diloco_dtype, "fp32", "--sync=diloco: pseudo-gradients on the wire: fp32|bf16|int8 (bf16/int8 with error feedback; int8 is ~1/4 of the bytes)");
DEFINE_int64(diloco_int8_chunk, 4096, "--sync=diloco --diloco_dtype=int8: elements per fp32 scale");
DEFINE_int32(diloco_fragments, 1, "--sync=diloco: Streaming DiLoCo fragments, each synchronised once per H steps in turn (1 = whole model)");
DEFINE_bool(diloco_overlap, false, "--sync=diloco: overlap each fragment's communication with the next inner step");
DEFINE_double(dist_link_mbps, 0, "emulate a link of this many Mbit/s under every collective (0 = off): shows on one machine what a slow link does");
DEFINE_double(dist_link_latency_ms, 0, "emulated link: one-way latency per message step in ms");
// Estimate mode (convforever/train/estimate_mode.h): cost of the run these flags describe.
DEFINE_bool(estimate, false, "print GPU-hours, dollars and per-GPU memory of this run instead of training");
DEFINE_string(gpu, "rtx4090", "--estimate: target GPU, a row of --gpu_table, or \"local\" (this machine, --device)");
DEFINE_int32(gpus, 1, "--estimate: data-parallel GPUs");
DEFINE_double(price_per_hour, -1, "--estimate: USD per GPU-hour (default: the table's)");
DEFINE_string(gpu_table, "convforever/plan/gpus.csv", "--estimate: GPU table (CSV)");
DEFINE_int64(samples, 0, "--estimate: training images in total (default: from --max_steps or --epochs x the data)");
DEFINE_int64(eval_samples, -1, "--estimate: images per evaluation pass (default: the eval data's)");
DEFINE_string(depths, "", "--estimate: comma-separated --depth values for --model=convforever, one row each");
DEFINE_bool(calibrate, false, "--estimate: measure step time and utilisation on --device first");
DEFINE_int32(calibrate_steps, 5, "--estimate --calibrate: timed steps (after 2 warm-up steps)");
DEFINE_string(calibrate_gpu, "", "--estimate --calibrate --device=cuda: this machine's GPU row (default --gpu)");
DEFINE_double(link_gbps, 128, "--estimate: per-GPU all-reduce bandwidth, Gbit/s (128 = PCIe 4.0 x16 class)");
DEFINE_double(utilization, 0, "--estimate: model FLOPs utilisation (0 = default 0.30, or calibrated)");
DEFINE_string(format, "table", "--estimate: table|json");
DEFINE_string(estimate_json, "", "--estimate: also write the JSON report to this file");
// Preflight mode (convforever/train/preflight.h): the checks to pass before paying for GPUs.
DEFINE_bool(preflight, false, "check this run instead of training (flags, data, schedule, classes, held-out set, micro-batch memory, loader speed, disk, Hub token, hosts, all-reduce, time) and print a table; exit 1 when a check fails");
DEFINE_int64(preflight_scan_samples, 2048, "--preflight: samples whose labels are checked against the classes");
DEFINE_double(preflight_memory_gb, 0, "--preflight: memory budget per rank for the micro-batch check (0 = the GPU's memory, or MemAvailable over the ranks on this host)");
DEFINE_double(preflight_timeout_s, 5, "--preflight: timeout of each network probe (a data URL, a host's ssh port, the all-reduce rendezvous)");
DEFINE_string(hostfile, "", "--preflight: DeepSpeed hostfile (\"HOST slots=N\" lines): check each host and an all-reduce between them");
DEFINE_bool(preflight_allreduce, false, "internal: one rank of --preflight's all-reduce check (started by it with torchrun's variables)");

namespace {

absl::StatusOr<cf::train::EstimateRequest> EstimateRequestFromFlags() {
  cf::train::EstimateRequest r;
  r.gpu = FLAGS_gpu;
  r.gpus = FLAGS_gpus;
  r.price_per_hour = FLAGS_price_per_hour;
  r.gpu_table = FLAGS_gpu_table;
  r.samples = FLAGS_samples;
  r.eval_samples = FLAGS_eval_samples;
  for (absl::string_view d : absl::StrSplit(FLAGS_depths, ',', absl::SkipEmpty())) {
    int v = 0;
    if (!absl::SimpleAtoi(d, &v) || v < 4) {
      return absl::InvalidArgumentError("--depths: expected integers >= 4, got " + FLAGS_depths);
    }
    r.depths.push_back(v);
  }
  r.calibrate = FLAGS_calibrate;
  r.calibrate_steps = FLAGS_calibrate_steps;
  r.calibrate_gpu = FLAGS_calibrate_gpu;
  r.link_gbps = FLAGS_link_gbps;
  r.utilization = FLAGS_utilization;
  if (FLAGS_format != "table" && FLAGS_format != "json") {
    return absl::InvalidArgumentError("--format: want table or json, got " + FLAGS_format);
  }
  return r;
}

int RunEstimate(const cf::train::TrainerOptions& options) {
  absl::StatusOr<cf::train::EstimateRequest> r = EstimateRequestFromFlags();
  if (!r.ok()) {
    std::fprintf(stderr, "train: %s\n", std::string(r.status().message()).c_str());
    return 2;
  }
  return cf::train::EstimateMain(options, *r, FLAGS_format == "json", FLAGS_estimate_json);
}

}  // namespace

namespace {

// `apply_deepspeed` false leaves --deepspeed_config to the caller (the preflight checks it).
absl::StatusOr<cf::train::TrainerOptions> OptionsFromFlags(bool apply_deepspeed) {
  cf::train::TrainerOptions o;
  o.model = FLAGS_model;
  o.depth = FLAGS_depth;
  for (absl::string_view w : absl::StrSplit(FLAGS_widths, ',', absl::SkipEmpty())) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(w, &v) || v <= 0) {
      return absl::InvalidArgumentError("--widths: expected positive integers, got " + FLAGS_widths);
    }
    o.widths.push_back(v);
  }
  o.width_multiplier = FLAGS_width_multiplier;
  o.stem_stride = FLAGS_stem_stride;
  o.drop_path_rate = FLAGS_drop_path_rate;
  o.layer_scale_init = FLAGS_layer_scale_init;
  o.gradient_checkpointing = FLAGS_enable_gradient_checkpointing;
  o.channels_last = FLAGS_channels_last;
  o.data = FLAGS_data;
  o.data_dir = FLAGS_data_dir;
  o.eval_data_dir = FLAGS_eval_data_dir;
  o.eval_fraction = FLAGS_eval_fraction;
  o.eval_cache_mb = FLAGS_eval_cache_mb;
  o.class_list = FLAGS_class_list;
  o.wds_epoch_samples = FLAGS_wds_epoch_samples;
  o.train_samples = FLAGS_train_samples;
  o.subset = FLAGS_subset;
  o.synthetic_samples = FLAGS_synthetic_samples;
  o.synthetic_classes = FLAGS_synthetic_classes;
  o.image_size = FLAGS_image_size;
  o.channels = FLAGS_channels;
  o.crop_pct = FLAGS_crop_pct;
  o.progressive_resize = FLAGS_progressive_resize;
  o.num_workers = FLAGS_num_workers;
  o.prefetch_batches = FLAGS_prefetch_batches;
  o.random_crop_padding = FLAGS_random_crop_padding;
  o.random_resized_crop = FLAGS_random_resized_crop;
  o.hflip = FLAGS_hflip;
  o.color_jitter = FLAGS_color_jitter;
  o.randaugment = FLAGS_randaugment;
  o.random_erasing = FLAGS_random_erasing;
  o.mixup = FLAGS_mixup;
  o.cutmix = FLAGS_cutmix;
  o.mixup_prob = FLAGS_mixup_prob;
  o.mixup_switch_prob = FLAGS_mixup_switch_prob;
  o.label_smoothing = FLAGS_label_smoothing;
  o.micro_batch_size = FLAGS_micro_batch_size;
  o.gradient_accumulation_steps = FLAGS_gradient_accumulation_steps;
  o.epochs = FLAGS_epochs;
  o.max_steps = FLAGS_max_steps;
  if (!FLAGS_time_budget.empty()) {
    ASSIGN_OR_RETURN(o.time_budget_s, cf::train::ParseTimeBudget(FLAGS_time_budget));
  }
  o.optimizer = FLAGS_optimizer;
  o.lr = FLAGS_lr;
  o.min_lr = FLAGS_min_lr;
  o.weight_decay = FLAGS_weight_decay;
  o.beta1 = FLAGS_beta1;
  o.beta2 = FLAGS_beta2;
  o.eps = FLAGS_eps;
  o.momentum = FLAGS_momentum;
  o.nesterov = FLAGS_nesterov;
  o.layer_decay = FLAGS_layer_decay;
  o.lr_scheduler_type = FLAGS_lr_scheduler_type;
  o.warmup_epochs = FLAGS_warmup_epochs;
  o.warmup_steps = FLAGS_warmup_steps;
  o.onecycle_pct_start = FLAGS_onecycle_pct_start;
  o.onecycle_div_factor = FLAGS_onecycle_div_factor;
  o.onecycle_final_div_factor = FLAGS_onecycle_final_div_factor;
  o.step_decay_epochs = FLAGS_step_decay_epochs;
  o.step_decay_rate = FLAGS_step_decay_rate;
  o.gradient_clipping = FLAGS_gradient_clipping;
  o.ema_decay = FLAGS_ema_decay;
  if (!gflags::GetCommandLineFlagInfoOrDie("ema_warmup_steps").is_default) {
    return absl::InvalidArgumentError(
        "--ema_warmup_steps was removed: it never counted steps, it was the gamma of timm's decay "
        "warmup, decay_t = 1 - (1 + t / gamma)^-power; use --ema_warmup_gamma=<the same value> "
        "(and --ema_warmup_power, default 2/3)");
  }
  o.ema_warmup_gamma = FLAGS_ema_warmup_gamma;
  o.ema_warmup_power = FLAGS_ema_warmup_power;
  o.precision = FLAGS_precision;
  o.run_dir = FLAGS_run_dir;
  o.log_every_steps = FLAGS_log_every_steps;
  o.profile_steps = FLAGS_profile_steps;
  o.eval_every_steps = FLAGS_eval_every_steps;
  o.checkpoint_every_steps = FLAGS_checkpoint_every_steps;
  o.keep_checkpoints = FLAGS_keep_checkpoints;
  o.resume = FLAGS_resume;
  o.init_from = FLAGS_init_from;
  o.seed = FLAGS_seed;
  o.threads = FLAGS_threads;
  o.device = FLAGS_device;
  o.max_nonfinite_steps = FLAGS_max_nonfinite_steps;
  o.tensorboard = FLAGS_tensorboard;
  o.trackio_project = FLAGS_trackio_project;
  o.run_name = FLAGS_run_name;
  o.hub_repo = FLAGS_hub_repo;
  o.upload_every = FLAGS_upload_every;
  o.hub_private = FLAGS_hub_private;
  o.dist_backend = FLAGS_dist_backend;
  o.zero_stage = FLAGS_zero_stage;
  o.zero_offload_optimizer = FLAGS_zero_offload_optimizer;
  o.dist_timeout_s = FLAGS_dist_timeout_s;
  o.sync = FLAGS_sync;
  o.powersgd_rank = FLAGS_powersgd_rank;
  o.powersgd_start_iter = FLAGS_powersgd_start_iter;
  o.powersgd_warm_start = FLAGS_powersgd_warm_start;
  o.powersgd_min_compression_rate = FLAGS_powersgd_min_compression_rate;
  o.powersgd_error_feedback = FLAGS_powersgd_error_feedback;
  o.diloco_inner_steps = FLAGS_diloco_inner_steps;
  o.diloco_outer_lr = FLAGS_diloco_outer_lr;
  o.diloco_outer_momentum = FLAGS_diloco_outer_momentum;
  o.diloco_outer_nesterov = FLAGS_diloco_outer_nesterov;
  o.diloco_dtype = FLAGS_diloco_dtype;
  o.diloco_int8_chunk = FLAGS_diloco_int8_chunk;
  o.diloco_fragments = FLAGS_diloco_fragments;
  o.diloco_overlap = FLAGS_diloco_overlap;
  o.dist_link_mbps = FLAGS_dist_link_mbps;
  o.dist_link_latency_ms = FLAGS_dist_link_latency_ms;
  if (apply_deepspeed && !FLAGS_deepspeed_config.empty()) {
    RETURN_IF_ERROR(cf::train::ApplyDeepSpeedConfig(FLAGS_deepspeed_config, &o));
  }
  o.config_json = cf::train::FlagsAsJson();
  return o;
}

int RunPreflight(const cf::train::TrainerOptions& options) {
  cf::train::PreflightOptions p;
  p.deepspeed_config = FLAGS_deepspeed_config;
  p.scan_samples = FLAGS_preflight_scan_samples;
  p.memory_gb = FLAGS_preflight_memory_gb;
  p.timeout_s = FLAGS_preflight_timeout_s;
  p.hostfile = FLAGS_hostfile;
  return cf::train::PreflightMain(options, p);
}

int Evaluate(const cf::train::TrainerOptions& options) {
  absl::StatusOr<cf::train::EvalResult> r =
      cf::train::EvaluateCheckpoint(options, FLAGS_checkpoint, FLAGS_eval_ema);
  if (!r.ok()) {
    std::fprintf(stderr, "train: error: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (%lld images)\n", 100 * r->top1,
              100 * r->top5, r->loss, static_cast<long long>(r->samples));
  return 0;
}

int FindLearningRate(const cf::train::TrainerOptions& options) {
  cf::train::LrFinderOptions finder;
  finder.steps = FLAGS_lr_finder_steps;
  finder.start_lr = FLAGS_lr_finder_start_lr;
  finder.end_lr = FLAGS_lr_finder_end_lr;
  absl::StatusOr<cf::train::LrFinderResult> r = cf::train::FindLearningRate(options, finder);
  if (!r.ok()) {
    std::fprintf(stderr, "train: error: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("lr finder: %zu steps, lr %.3g .. %.3g%s\n", r->points.size(), r->min_lr, r->max_lr,
              r->diverged ? " (stopped: the loss diverged)" : "");
  if (r->suggested_lr > 0) {
    std::printf("suggested --lr=%.3g (steepest descent of the smoothed loss; the recipe has %g)\n",
                r->suggested_lr, options.lr);
  } else {
    std::printf("no suggestion: too few steps before the loss diverged; lower --lr_finder_start_lr\n");
  }
  std::printf("curve: %s/lr_finder.csv\n", options.run_dir.c_str());
  return 0;
}

// `train --help`: the flags in the README's groups.
const std::vector<cf::base::FlagGroup>& HelpGroups() {
  static const auto* groups = new std::vector<cf::base::FlagGroup>{
      {"Model", {"model", "depth", "widths", "width_multiplier", "stem_stride", "drop_path_rate",
       "layer_scale_init", "enable_gradient_checkpointing", "channels_last"}},
      {"Data", {"data", "data_dir", "eval_data_dir", "eval_fraction", "eval_cache_mb", "class_list",
       "train_samples", "wds_epoch_samples", "subset", "synthetic_samples", "synthetic_classes",
       "image_size", "channels", "crop_pct", "progressive_resize", "num_workers",
       "prefetch_batches"}},
      {"Augmentation", {"random_crop_padding", "random_resized_crop", "hflip", "color_jitter",
       "randaugment", "random_erasing", "mixup", "cutmix", "mixup_prob", "mixup_switch_prob",
       "label_smoothing"}},
      {"Optimization", {"optimizer", "lr", "min_lr", "weight_decay", "beta1", "beta2", "eps",
       "momentum", "nesterov", "layer_decay", "lr_scheduler_type", "warmup_epochs", "warmup_steps",
       "onecycle_pct_start", "onecycle_div_factor", "onecycle_final_div_factor",
       "step_decay_epochs", "step_decay_rate", "micro_batch_size", "gradient_accumulation_steps",
       "epochs", "max_steps", "time_budget", "gradient_clipping", "ema_decay", "ema_warmup_gamma",
       "ema_warmup_power", "ema_warmup_steps", "precision", "max_nonfinite_steps",
       "deepspeed_config"}},
      {"Fine-tuning and evaluation", {"init_from", "eval_only", "checkpoint", "eval_ema"}},
      {"LR range test", {"lr_finder", "lr_finder_steps", "lr_finder_start_lr", "lr_finder_end_lr"}},
      {"Run", {"run_dir", "run_name", "log_every_steps", "eval_every_steps",
       "checkpoint_every_steps", "keep_checkpoints", "resume", "seed", "threads", "device",
       "tensorboard", "profile_steps", "trackio_project", "hub_repo", "upload_every", "hub_private"}},
      {"Distributed", {"dist_backend", "dist_timeout_s", "zero_stage", "zero_offload_optimizer"}},
      {"Slow links", {"sync", "powersgd_rank", "powersgd_start_iter", "powersgd_warm_start",
       "powersgd_min_compression_rate", "powersgd_error_feedback", "diloco_inner_steps",
       "diloco_outer_lr", "diloco_outer_momentum", "diloco_outer_nesterov", "diloco_dtype",
       "diloco_int8_chunk", "diloco_fragments", "diloco_overlap", "dist_link_mbps",
       "dist_link_latency_ms"}},
      {"Planning (--estimate)", {"estimate", "gpu", "gpus", "price_per_hour", "gpu_table",
       "samples", "eval_samples", "depths", "calibrate", "calibrate_steps", "calibrate_gpu",
       "link_gbps", "utilization", "format", "estimate_json"}},
      {"Preflight (--preflight)", {"preflight", "preflight_scan_samples", "preflight_memory_gb",
       "preflight_timeout_s", "hostfile", "preflight_allreduce"}},
  };
  return *groups;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr char kUsage[] =
      "trains an image classifier.\n  tools/cf train [--recipe=NAME] [--flag=value ...]\n"
      "Recipes are flagfiles in convforever/train/recipes/ (--flagfile=...).";
  if (cf::base::PrintHelpIfAsked(argc, argv, kUsage, "convforever/train/main.cc", HelpGroups())) return 0;
  gflags::SetUsageMessage(kUsage);
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (argc > 1) {
    std::fprintf(stderr, "train: unexpected argument '%s' (flags look like --name=value)\n", argv[1]);
    return 2;
  }
  cf::base::InstallStopHandlers();
  if (FLAGS_preflight_allreduce) return cf::train::PreflightAllReduceMain(FLAGS_preflight_timeout_s, 8);

  absl::StatusOr<cf::train::TrainerOptions> options = OptionsFromFlags(/*apply_deepspeed=*/!FLAGS_preflight);
  if (!options.ok()) {
    std::fprintf(stderr, "train: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  if (FLAGS_eval_only) return Evaluate(*options);
  if (FLAGS_lr_finder) return FindLearningRate(*options);
  if (FLAGS_estimate) return RunEstimate(*options);
  if (FLAGS_preflight) return RunPreflight(*options);
  absl::StatusOr<cf::train::TrainResult> result = cf::train::Train(*options);
  if (!result.ok()) {
    std::fprintf(stderr, "train: error: %s\n", result.status().ToString().c_str());
    if (absl::IsInvalidArgument(result.status())) {
      std::fprintf(stderr, "train: hint: `tools/cf train --help` lists the flags\n");
    } else {
      std::fprintf(stderr,
                   "train: hint: completed checkpoints in %s/checkpoints resume with --resume=auto\n",
                   options->run_dir.c_str());
    }
    return 1;
  }
  cf::train::PrintSummary(*options, *result);
  return 0;
}
