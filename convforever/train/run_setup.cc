#include "convforever/train/run_setup.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <ATen/core/grad_mode.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/autocast.h"
#include "convforever/base/signals.h"
#include "convforever/base/status_macros.h"
#include "convforever/models/init_from.h"
#include "convforever/models/registry.h"
#include "convforever/optim/clip.h"
#include "convforever/train/diloco_state.h"
#include "convforever/train/evaluate.h"
#include "convforever/train/loss.h"
#include "convforever/optim/param_groups.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

absl::StatusOr<std::vector<data::ProgressiveStage>> ParseProgressive(const std::string& text) {
  std::vector<data::ProgressiveStage> stages;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    data::ProgressiveStage stage;
    if (parts.size() < 2 || parts.size() > 3 || !absl::SimpleAtoi(parts[0], &stage.from_epoch) ||
        !absl::SimpleAtoi(parts[1], &stage.image_size) ||
        (parts.size() == 3 && !absl::SimpleAtoi(parts[2], &stage.batch_size)) ||
        stage.image_size <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--progressive_resize: bad stage '", item, "' (want epoch:size[:batch], e.g. 0:64,10:128)"));
    }
    stages.push_back(stage);
  }
  return stages;
}

absl::StatusOr<std::vector<std::string>> ReadClassList(const std::string& path) {
  std::vector<std::string> names;
  if (path.empty()) return names;
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--class_list: cannot read ", path));
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.empty()) return absl::InvalidArgumentError(absl::StrCat("--class_list: ", path, " is empty"));
  return names;
}

// The data kind and location for one split, with the defaults each kind has.
data::DatasetSpec MakeSpec(const TrainerOptions& o, bool train) {
  data::DatasetSpec spec;
  spec.kind = o.data;
  spec.path = o.data_dir;
  if (o.data == "fashion_mnist" && spec.path.empty()) spec.path = kFashionMnistDir;
  if (!train && !o.eval_data_dir.empty()) spec.path = o.eval_data_dir;
  spec.split = train ? "train" : "test";
  spec.subset = train ? o.subset : 0;
  spec.class_list_path = o.class_list;
  if (train) spec.wds_epoch_samples = o.wds_epoch_samples;
  if (train) spec.wds_train_samples = o.train_samples;
  spec.synthetic_samples = train ? o.synthetic_samples : std::max<int64_t>(o.synthetic_samples / 4, 64);
  spec.synthetic_classes = static_cast<int>(o.synthetic_classes);
  spec.synthetic_size = static_cast<int>(o.image_size);
  spec.synthetic_channels = o.channels > 0 ? o.channels : 3;
  spec.synthetic_seed = train ? o.seed : o.seed + 1;  // the eval set is different data
  return spec;
}

absl::StatusOr<data::LoaderOptions> MakeLoaderOptions(const TrainerOptions& o, bool train) {
  data::LoaderOptions l;
  l.batch_size = o.micro_batch_size;
  l.num_workers = o.num_workers;
  l.prefetch_batches = o.prefetch_batches;
  l.seed = o.seed;
  l.shuffle = train;
  l.drop_last = train;  // every eval sample counts exactly once
  l.train = train;
  l.image_size = o.image_size;
  l.channels = o.channels;
  l.should_stop = base::StopRequested;  // a blocked Next() (stalled download) wakes on SIGINT/SIGTERM
  data::TransformOptions& t = l.transforms;
  t.train_crop = o.random_resized_crop ? "rrc" : (o.random_crop_padding > 0 ? "pad_crop" : "none");
  t.pad = static_cast<int>(o.random_crop_padding);
  t.hflip = o.hflip ? 0.5 : 0.0;
  t.color_jitter = o.color_jitter;
  t.random_erasing = o.random_erasing;
  t.crop_pct = o.crop_pct;
  t.channels_last = o.channels_last;
  if (!o.randaugment.empty()) {
    std::vector<absl::string_view> nm = absl::StrSplit(o.randaugment, '/');
    if (nm.size() != 2 || !absl::SimpleAtoi(nm[0], &t.randaugment_n) ||
        !absl::SimpleAtoi(nm[1], &t.randaugment_m)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--randaugment: want \"n/m\" like \"2/9\", got '", o.randaugment, "'"));
    }
  }
  if (train) {
    l.mix.mixup_alpha = o.mixup;
    l.mix.cutmix_alpha = o.cutmix;
    l.mix.prob = o.mixup_prob;
    l.mix.switch_prob = o.mixup_switch_prob;
    // Without mixing, keep hard labels: the loss applies smoothing more cheaply than [B, K] targets.
    if (l.mix.enabled()) l.mix.label_smoothing = o.label_smoothing;
    ASSIGN_OR_RETURN(l.progressive, ParseProgressive(o.progressive_resize));
  }
  return l;
}

}  // namespace

RunSetup::RunSetup(const TrainerOptions& options) : options_(options) {}

RunSetup::~RunSetup() { Close(); }

absl::StatusOr<std::unique_ptr<RunSetup>> RunSetup::Create(const TrainerOptions& options) {
  std::unique_ptr<RunSetup> run(new RunSetup(options));
  if (options.device == "cuda") {
    run->device_ = c10::Device(c10::kCUDA, 0);
  } else if (options.device != "cpu") {
    return absl::InvalidArgumentError("--device: want cpu or cuda, got '" + options.device + "'");
  }
  RETURN_IF_ERROR(run->BuildDistributed());
  // Seeds weight init, dropout and drop path (rank 0's initial weights are broadcast anyway; the
  // rank offset gives ranks different dropout masks, as different data would). The data pipeline
  // seeds itself from (seed, epoch).
  at::manual_seed(options.seed + run->rank());
  RETURN_IF_ERROR(run->BuildData());
  RETURN_IF_ERROR(run->BuildModel());
  RETURN_IF_ERROR(run->BroadcastInitialWeights());
  RETURN_IF_ERROR(run->BuildOptimizer());
  RETURN_IF_ERROR(run->BuildCheckpoints());
  return run;
}

// Joins the job described by the launcher's environment (torchrun, SLURM, DeepSpeed, Open MPI);
// a plain single process has no communicator at all.
absl::Status RunSetup::BuildDistributed() {
  ASSIGN_OR_RETURN(distributed::LaunchEnv env, distributed::ReadLaunchEnv(distributed::LaunchOverrides{}));
  if (options_.device == "cuda") device_ = c10::Device(c10::kCUDA, env.local_rank);
  if (env.world_size <= 1) {
    if (options_.zero_stage > 0) {
      LOG(INFO) << "--zero_stage=" << options_.zero_stage
                << ": ZeRO shards optimizer state over several ranks; a single process has "
                   "nothing to shard and trains unsharded";
    }
    return absl::OkStatus();
  }
  distributed::CommOptions c;
  c.backend = options_.dist_backend;
  c.cuda = device_.is_cuda();
  c.timeout = absl::Seconds(options_.dist_timeout_s);
  c.link.mbps = options_.dist_link_mbps;
  c.link.latency_ms = options_.dist_link_latency_ms;
  ASSIGN_OR_RETURN(comm_, distributed::Communicator::Create(env, c));
  if (c.link.enabled()) {
    LOG(INFO) << "emulated link: " << c.link.mbps << " Mbit/s, " << c.link.latency_ms
              << " ms per message step";
  }
  LOG(INFO) << "rank " << comm_->rank() << " of " << comm_->world_size() << " ("
            << comm_->backend_name() << ", launched by " << env.source << ")";
  return absl::OkStatus();
}

// Every rank starts from rank 0's weights. Plain data parallel and PowerSGD keep their
// DataParallel (hooks reduce gradients); ZeRO and DiLoCo use one without hooks for the broadcast
// only and drop it,
// so no hook runs during backward (ZeroOptimizer reduces in ApplyGradients; DiLoCo's inner steps
// are local). DiLoCo's theta_last starts as the broadcast weights.
absl::Status RunSetup::BroadcastInitialWeights() {
  if (!comm_) {
    if (options_.sync == "diloco") LOG(INFO) << "--sync=diloco: one rank, nothing to synchronise";
    return absl::OkStatus();
  }
  const bool hooks = options_.zero_stage == 0 && options_.sync != "diloco";  // ddp, powersgd
  distributed::DataParallelOptions d;
  d.overlap = hooks;
  if (options_.sync == "powersgd" && hooks) {
    distributed::PowerSgdOptions p;
    p.rank = options_.powersgd_rank;
    p.start_iter = options_.powersgd_start_iter;
    p.warm_start = options_.powersgd_warm_start;
    p.min_compression_rate = options_.powersgd_min_compression_rate;
    p.use_error_feedback = options_.powersgd_error_feedback;
    p.seed = options_.seed;
    powersgd_ = std::make_shared<distributed::PowerSgd>(comm_.get(), p);
    d.reducer = powersgd_;
  }
  auto dp = std::make_unique<distributed::DataParallel>(
      comm_.get(), model_->named_parameters(/*recurse=*/true).pairs(), d);
  RETURN_IF_ERROR(dp->BroadcastParameters(*model_));
  if (hooks) dp_ = std::move(dp);
  if (powersgd_) {
    LOG(INFO) << "PowerSGD rank " << options_.powersgd_rank << " from step "
              << options_.powersgd_start_iter << ": " << powersgd_->compressed_tensors()
              << " gradients compressed (" << powersgd_->compressed_bytes_per_step()
              << " bytes of factors per step), " << powersgd_->uncompressed_tensors()
              << " all-reduced whole (" << powersgd_->uncompressed_bytes_per_step() << " bytes)";
  }
  if (options_.sync == "diloco") {
    ASSIGN_OR_RETURN(diloco_, CreateDiLoCo(options_, comm_.get(), *model_));
  }
  return absl::OkStatus();
}

bool RunSetup::AgreesOnStopAfter(int64_t step) const {
  return !diloco_ || step % options_.diloco_inner_steps == 0;
}

absl::StatusOr<bool> RunSetup::AnyRank(bool local) {
  if (!comm_) return local;
  std::vector<double> flag = {local ? 1.0 : 0.0};
  RETURN_IF_ERROR(comm_->AllReduceScalars(flag, distributed::ReduceOp::kMax));
  return flag[0] > 0;
}

absl::Status RunSetup::BuildData() {
  ASSIGN_OR_RETURN(class_names_, ReadClassList(options_.class_list));
  ASSIGN_OR_RETURN(data::LoaderOptions train_opts, MakeLoaderOptions(options_, /*train=*/true));
  train_opts.rank = rank();
  train_opts.world_size = world_size();
  ASSIGN_OR_RETURN(train_loader_, data::Loader::Create(MakeSpec(options_, true), train_opts));
  ASSIGN_OR_RETURN(data::LoaderOptions eval_opts, MakeLoaderOptions(options_, /*train=*/false));
  eval_opts.channels = train_loader_->channels();
  ASSIGN_OR_RETURN(eval_loader_, data::Loader::Create(MakeSpec(options_, false), eval_opts));
  // Without --class_list, the names the data defines (for config.json's id2label, model cards).
  if (class_names_.empty() && train_loader_->class_names().size() == size_t(train_loader_->num_classes())) {
    class_names_ = train_loader_->class_names();
  }
  const int64_t batches = train_loader_->batches_per_epoch();
  steps_per_epoch_ = batches / options_.gradient_accumulation_steps;
  if (steps_per_epoch_ == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the training set gives %d batches of %d per epoch, fewer than --gradient_accumulation_steps=%d",
        batches, options_.micro_batch_size, options_.gradient_accumulation_steps));
  }
  total_steps_ = options_.max_steps > 0
                     ? options_.max_steps
                     : static_cast<int64_t>(std::ceil(options_.epochs * steps_per_epoch_));
  images_per_step_ = options_.micro_batch_size * options_.gradient_accumulation_steps;
  LOG(INFO) << "data: " << train_loader_->num_samples() << " training samples, "
            << train_loader_->num_classes() << " classes, " << steps_per_epoch_
            << " steps/epoch, " << total_steps_ << " steps";
  return absl::OkStatus();
}

absl::Status RunSetup::BuildModel() {
  models::ModelOptions m = models::DefaultOptions(options_.model);
  m.num_classes = class_names_.empty() ? train_loader_->num_classes()
                                       : static_cast<int64_t>(class_names_.size());
  m.in_channels = train_loader_->channels();
  m.image_size = options_.image_size;
  m.drop_path_rate = options_.drop_path_rate;
  m.layer_scale_init = options_.layer_scale_init;
  m.gradient_checkpointing = options_.gradient_checkpointing;
  if (options_.depth > 0) m.depth = options_.depth;
  if (!options_.widths.empty()) m.widths = options_.widths;
  m.width_multiplier = options_.width_multiplier;
  if (options_.stem_stride > 0) m.stem_stride = options_.stem_stride;
  ASSIGN_OR_RETURN(model_, models::CreateModel(options_.model, m));
  try {
    model_->to(device_);
    if (options_.channels_last) {
      at::NoGradGuard no_grad;
      for (at::Tensor& p : model_->parameters()) {
        if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
      }
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot move the model to ", device_.str(), ": ",
                                            e.what_without_backtrace()));
  }
  LOG(INFO) << "model: " << options_.model << ", " << models::CountParameters(*model_)
            << " parameters";
  return InitFromPretrained();
}

// --init_from, before EMA and the broadcast copy the weights. With --resume=auto the checkpoint
// (if any) replaces them later (trainer.cc logs that); an explicit --resume=DIR skips the file.
absl::Status RunSetup::InitFromPretrained() {
  if (options_.init_from.empty()) return absl::OkStatus();
  if (!options_.resume.empty() && options_.resume != "auto") {
    LOG(INFO) << "init_from: ignored, --resume=" << options_.resume << " has its own weights";
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(models::InitFromResult r, models::InitFromPretrained(*model_, options_.init_from));
  LOG(INFO) << models::Describe(r);
  return absl::OkStatus();
}

absl::Status RunSetup::BuildOptimizer() {
  optim::ParamGroupOptions g;
  g.weight_decay = options_.weight_decay;
  g.layer_decay = options_.layer_decay;
  std::vector<optim::ParamGroup> groups =
      optim::MakeParamGroups(model_->named_parameters(/*recurse=*/true).pairs(), g);
  params_ = optim::AllParams(groups);
  optim::OptimizerOptions opt;
  opt.type = options_.optimizer;
  opt.lr = options_.lr;
  opt.weight_decay = options_.weight_decay;
  opt.beta1 = options_.beta1;
  opt.beta2 = options_.beta2;
  opt.eps = options_.eps;
  opt.momentum = options_.momentum;
  opt.nesterov = options_.nesterov;
  if (options_.optimizer_override) opt = *options_.optimizer_override;
  if (comm_ && options_.zero_stage > 0) {
    distributed::ZeroOptions z;
    z.stage = options_.zero_stage;
    z.offload_optimizer = options_.zero_offload_optimizer;
    ASSIGN_OR_RETURN(zero_, CreateShardedOptimizer(comm_.get(),
                                                   model_->named_parameters(/*recurse=*/true).pairs(),
                                                   groups, opt, z, &zero_updater_));
    LOG(INFO) << "ZeRO stage " << z.stage << (z.offload_optimizer ? " (optimizer on the CPU)" : "")
              << ": this rank holds " << zero_->shard_numel() << " of " << zero_->total_numel()
              << " parameters' optimizer state";
  } else {
    ASSIGN_OR_RETURN(optimizer_, optim::CreateOptimizer(opt, std::move(groups)));
  }

  schedule_.type = options_.lr_scheduler_type;
  schedule_.base_lr = options_.lr;
  schedule_.min_lr = options_.min_lr;
  schedule_.total_steps = total_steps_;
  schedule_.steps_per_epoch = steps_per_epoch_;
  schedule_.warmup_steps = options_.warmup_steps;
  if (options_.warmup_steps == 0) schedule_.warmup_epochs = options_.warmup_epochs;
  schedule_.pct_start = options_.onecycle_pct_start;
  schedule_.div_factor = options_.onecycle_div_factor;
  schedule_.final_div_factor = options_.onecycle_final_div_factor;
  schedule_.step_size = std::max<int64_t>(
      1, static_cast<int64_t>(std::llround(options_.step_decay_epochs * steps_per_epoch_)));
  schedule_.gamma = options_.step_decay_rate;
  if (options_.schedule_override) {
    schedule_ = *options_.schedule_override;
    if (schedule_.total_steps == 0) schedule_.total_steps = total_steps_;
    schedule_.steps_per_epoch = steps_per_epoch_;
  }
  RETURN_IF_ERROR(optim::ValidateSchedule(schedule_));

  if (options_.ema_decay > 0) {
    optim::EmaOptions e;
    e.decay = options_.ema_decay;
    e.warmup = options_.ema_warmup_steps > 0;
    if (e.warmup) e.warmup_gamma = static_cast<double>(options_.ema_warmup_steps);
    ema_ = std::make_unique<optim::Ema>(model_->StateDict(), e);
  }
  if (options_.precision == "fp16") {
    optim::LossScalerOptions s;
    s.init_scale = options_.loss_scale_init;
    s.growth_interval = options_.loss_scale_window;
    if (options_.loss_scaler_override) s = *options_.loss_scaler_override;
    scaler_ = std::make_unique<optim::LossScaler>(s);
  }
  return absl::OkStatus();
}

absl::Status RunSetup::BuildCheckpoints() {
  std::error_code ec;
  std::filesystem::create_directories(options_.run_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create --run_dir ", options_.run_dir, ": ", ec.message()));
  }
  checkpoints_ = std::make_unique<CheckpointManager>(options_.run_dir, options_.keep_checkpoints);
  return absl::OkStatus();
}

absl::Status RunSetup::OpenOutputs(int64_t resumed_step) {
  if (!is_main()) return absl::OkStatus();  // metrics and progress come from rank 0
  RunSinksOptions s;
  s.run_dir = options_.run_dir;
  s.tensorboard = options_.tensorboard;
  s.trackio = !options_.trackio_project.empty();
  s.trackio_options.project = options_.trackio_project;
  s.trackio_options.run_name = options_.run_name;
  s.trackio_options.run_id = trackio_run_id_;  // continue the same Trackio run after a resume
  ASSIGN_OR_RETURN(sinks_, RunSinks::Open(s));
  if (!options_.hub_repo.empty()) {
    ASSIGN_OR_RETURN(hub_, HubSync::Create(options_));
  }
  metrics_path_ = options_.run_dir + "/metrics.jsonl";
  if (sinks_->trackio() != nullptr) trackio_run_id_ = sinks_->trackio()->run_id();
  // A killed run logged steps past its last checkpoint; the resumed run logs them again.
  if (resumed_step > 0) RETURN_IF_ERROR(sinks_->sink()->DiscardAfter(resumed_step));
  nlohmann::json config = nlohmann::json::parse(options_.config_json, nullptr, false);
  if (config.is_discarded()) config = nlohmann::json::object();
  RETURN_IF_ERROR(sinks_->sink()->LogConfig(config));
  base::ProgressOptions p;
  p.label = "train";
  p.unit = "step";
  p.total = total_steps_;
  progress_ = std::make_unique<base::ProgressLine>(p);
  return absl::OkStatus();
}

absl::Status RunSetup::StartEpoch(int64_t epoch) {
  epoch_ = epoch;
  return train_loader_->StartEpoch(epoch);
}

absl::StatusOr<std::optional<StepBatch>> RunSetup::NextBatch() {
  ASSIGN_OR_RETURN(std::optional<data::Batch> batch, train_loader_->Next());
  if (!batch) return std::optional<StepBatch>();
  StepBatch out;
  out.images = batch->images.to(device_, /*non_blocking=*/true);
  out.targets = batch->targets.to(device_, /*non_blocking=*/true);
  out.soft = out.targets.dim() == 2;
  return std::optional<StepBatch>(std::move(out));
}

int64_t RunSetup::MicroBatchesLeftInEpoch() const {
  return train_loader_->batches_per_epoch() - train_loader_->state().batches_consumed;
}

at::Tensor RunSetup::ScaleLoss(const at::Tensor& loss) const {
  return scaler_ ? scaler_->Scale(loss) : loss;
}

void RunSetup::SetGradientSync(bool sync) {
  if (dp_) dp_->SetSyncThisStep(sync);
}

absl::StatusOr<bool> RunSetup::ApplyGradients(int64_t step, bool loss_finite) {
  if (zero_) return ApplyShardedGradients(step, loss_finite);
  if (dp_) RETURN_IF_ERROR(dp_->FinishGradientSync());  // .grad now holds the mean over ranks
  // Every rank must take the same decision: one rank's non-finite loss or gradient skips the
  // step everywhere.
  bool found_inf = !loss_finite;
  if (scaler_ && loss_finite) found_inf = scaler_->Unscale(params_);
  // DiLoCo: each rank's inner step is its own; it skips alone (no collective).
  if (!diloco_) {
    ASSIGN_OR_RETURN(found_inf, AnyRank(found_inf));
  }
  double norm = 0;
  if (!found_inf) {
    norm = optim::ClipGradNorm(params_, options_.gradient_clipping);
    found_inf = !std::isfinite(norm);
  }
  if (!found_inf) optimizer_->Step(LearningRate(step));
  optimizer_->ZeroGrad();
  if (scaler_) scaler_->Update(found_inf);
  if (diloco_) {
    RETURN_IF_ERROR(diloco_->AfterInnerStep(step + 1));
    if (step + 1 == total_steps_) RETURN_IF_ERROR(diloco_->SyncAll(step + 1));
  }
  if (!found_inf && ema_) ema_->Update(step + 1);
  last_grad_norm_ = norm;
  return !found_inf;
}

// The unscale before the reduction is exact (it is linear), and lets every rank agree on
// skipping before any gradient collective, so all ranks skip or reduce together. The clip norm
// is the global one, identical on every rank, so a non-finite norm skips everywhere too.
absl::StatusOr<bool> RunSetup::ApplyShardedGradients(int64_t step, bool loss_finite) {
  bool found_inf = !loss_finite;
  if (scaler_ && loss_finite) found_inf = scaler_->Unscale(params_);
  ASSIGN_OR_RETURN(bool skip, AnyRank(found_inf));
  double norm = 0;
  if (!skip) {
    RETURN_IF_ERROR(zero_->ReduceGradients());
    ASSIGN_OR_RETURN(norm, zero_->ClipGradNorm(options_.gradient_clipping));
    skip = !std::isfinite(norm);
    if (!skip) RETURN_IF_ERROR(zero_->Step(LearningRate(step)));
  }
  for (at::Tensor& p : params_) {
    if (p.grad().defined()) p.mutable_grad().reset();
  }
  if (scaler_) scaler_->Update(skip);
  if (!skip && ema_) ema_->Update(step + 1);
  last_grad_norm_ = norm;
  return !skip;
}

absl::StatusOr<double> RunSetup::ForwardBackward(const StepBatch& batch, int64_t accum,
                                                 int64_t step) {
  try {
    at::Tensor loss;
    {
      const c10::ScalarType dtype = options_.precision == "fp16" ? at::kHalf : at::kBFloat16;
      base::AutocastGuard autocast(device_.type(), dtype, /*enabled=*/options_.precision != "fp32");
      at::Tensor logits = model_->forward(batch.images);
      loss = ClassificationLoss(logits, batch.targets, batch.soft ? 0.0 : options_.label_smoothing);
    }
    const double value = loss.item<double>();
    ScaleLoss(loss / static_cast<double>(accum)).backward();
    return value;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("forward/backward failed at step ", step, ": ",
                                            e.what_without_backtrace()));
  }
}

double RunSetup::LearningRate(int64_t step) const { return optim::LearningRate(schedule_, step); }

absl::StatusOr<EvalResult> RunSetup::Evaluate(bool use_ema) {
  EvaluateOptions e;
  e.device = device_;
  e.precision = options_.precision;
  e.channels_last = options_.channels_last;
  if (use_ema && ema_) {
    optim::Ema::SwapGuard swap = ema_->SwapIn();
    ASSIGN_OR_RETURN(EvalCounts counts, EvaluateModel(*model_, *eval_loader_, e));
    return counts.ToResult();
  }
  ASSIGN_OR_RETURN(EvalCounts counts, EvaluateModel(*model_, *eval_loader_, e));
  return counts.ToResult();
}

void RunSetup::RecordTrainStep(int64_t step, double loss, double lr, bool skipped) {
  if (skipped) ++skipped_total_;
  if (!sinks_) return;
  if (std::isfinite(loss)) {
    loss_window_sum_ += loss;
    ++loss_window_count_;
  }
  const data::Counters c = train_loader_->counters();
  progress_->Update(step, absl::StrFormat("epoch %d | loss %.4f | lr %.3g | %.0f img/s", epoch_,
                                          loss, lr, progress_->rate() * images_per_step_));
  if (step % options_.log_every_steps != 0 && step != total_steps_) return;
  Scalars s = {{"train/loss", loss_window_count_ > 0 ? loss_window_sum_ / loss_window_count_ : loss},
               {"train/step_loss", loss},
               {"train/lr", lr},
               {"train/grad_norm", last_grad_norm_},
               {"train/epoch", static_cast<double>(epoch_)},
               {"train/images_per_sec", progress_->rate() * images_per_step_},
               {"train/skipped_steps", static_cast<double>(skipped_total_)},
               {"data/images_per_sec", c.images_per_sec}};
  for (const auto& [reason, n] : c.skipped) s.emplace_back("data/skipped/" + reason, n);
  AppendCommScalars(step, &s);
  loss_window_sum_ = 0;
  loss_window_count_ = 0;
  if (absl::Status st = sinks_->sink()->Log(step, s); !st.ok()) LOG(WARNING) << "metrics: " << st;
}

// Bytes per optimizer step since the last log line (payload by kind, and the ring model's), and
// the payload sent so far: what the low-bandwidth modes are judged by.
void RunSetup::AppendCommScalars(int64_t step, Scalars* s) {
  if (!comm_) return;
  const int64_t steps = std::max<int64_t>(1, step - comm_logged_step_);
  comm_logged_step_ = step;
  const distributed::ByteLedger::PerKind interval = comm_->ledger().TakeInterval();
  for (int k = 0; k < distributed::kNumTensorKinds; ++k) {
    if (interval[k].collectives == 0) continue;
    const std::string kind = distributed::TensorKindName(static_cast<distributed::TensorKind>(k));
    s->emplace_back("comm/" + kind + "/sent_bytes_per_step",
                    static_cast<double>(interval[k].payload_sent) / steps);
  }
  const distributed::ByteCounts sum = distributed::Sum(interval);
  s->emplace_back("comm/sent_bytes_per_step", static_cast<double>(sum.payload_sent) / steps);
  s->emplace_back("comm/received_bytes_per_step", static_cast<double>(sum.payload_received) / steps);
  s->emplace_back("comm/ring_sent_bytes_per_step", static_cast<double>(sum.ring_sent) / steps);
  s->emplace_back("comm/total_sent_bytes", static_cast<double>(comm_->ledger().Total().payload_sent));
}

std::vector<TrainResult::CommBytes> RunSetup::CommBytesByKind() const {
  std::vector<TrainResult::CommBytes> out;
  if (!comm_) return out;
  const distributed::ByteLedger::PerKind totals = comm_->ledger().Totals();
  for (int k = 0; k < distributed::kNumTensorKinds; ++k) {
    if (totals[k].collectives == 0) continue;
    out.push_back({distributed::TensorKindName(static_cast<distributed::TensorKind>(k)),
                   totals[k].payload_sent, totals[k].payload_received, totals[k].ring_sent,
                   totals[k].ring_received, totals[k].collectives});
  }
  return out;
}

void RunSetup::RecordEval(int64_t step, const EvalResult& raw, const EvalResult& ema) {
  if (!sinks_) return;
  Scalars s = {{"eval/loss", raw.loss}, {"eval/top1", raw.top1}, {"eval/top5", raw.top5}};
  std::string line = absl::StrFormat("eval step %d: loss %.4f top-1 %.2f%% top-5 %.2f%%", step,
                                     raw.loss, 100 * raw.top1, 100 * raw.top5);
  if (ema_) {
    s.insert(s.end(), {{"eval_ema/loss", ema.loss}, {"eval_ema/top1", ema.top1}, {"eval_ema/top5", ema.top5}});
    absl::StrAppendFormat(&line, " | EMA top-1 %.2f%%", 100 * ema.top1);
  }
  LOG(INFO) << line << " (" << raw.samples << " images)";
  if (absl::Status st = sinks_->sink()->Log(step, s); !st.ok()) LOG(WARNING) << "metrics: " << st;
  if (absl::Status st = sinks_->sink()->Flush(); !st.ok()) LOG(WARNING) << "metrics: " << st;
}

void RunSetup::Close() {
  if (progress_) progress_->Finish();
  progress_.reset();
  if (sinks_) {
    if (absl::Status st = sinks_->Close(); !st.ok()) LOG(WARNING) << "metrics: " << st;
    sinks_.reset();
  }
}

}  // namespace cf::train
