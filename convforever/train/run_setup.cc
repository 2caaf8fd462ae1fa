#include "convforever/train/run_setup.h"

#include <cmath>
#include <filesystem>

#include <ATen/core/grad_mode.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/autocast.h"
#include "convforever/base/status_macros.h"
#include "convforever/models/init_from.h"
#include "convforever/models/registry.h"
#include "convforever/optim/clip.h"
#include "convforever/train/diloco_state.h"
#include "convforever/train/distributed_setup.h"
#include "convforever/train/empty_step.h"
#include "convforever/train/epoch_steps.h"
#include "convforever/train/evaluate.h"
#include "convforever/train/loss.h"
#include "convforever/train/run_data.h"
#include "convforever/optim/param_groups.h"
#include "glog/logging.h"

namespace cf::train {

absl::StatusOr<optim::ScheduleOptions> RunSchedule(const TrainerOptions& o, const EpochSteps& epoch_steps,
                                                    int64_t steps_per_epoch, int64_t total_steps) {
  optim::ScheduleOptions s;
  s.type = o.lr_scheduler_type;
  s.base_lr = o.lr;
  s.min_lr = o.min_lr;
  s.total_steps = total_steps;
  s.steps_per_epoch = steps_per_epoch;
  s.warmup_steps = o.warmup_steps;
  if (o.warmup_steps == 0) s.warmup_epochs = o.warmup_epochs;
  s.pct_start = o.onecycle_pct_start;
  s.div_factor = o.onecycle_div_factor;
  s.final_div_factor = o.onecycle_final_div_factor;
  s.step_size = std::max<int64_t>(
      1, static_cast<int64_t>(std::llround(o.step_decay_epochs * steps_per_epoch)));
  s.gamma = o.step_decay_rate;
  if (!epoch_steps.uniform()) {
    // Epochs of different lengths: warmup and step decay end on the cumulative step of their epoch.
    if (s.warmup_epochs > 0) s.warmup_steps = epoch_steps.StepAtEpoch(s.warmup_epochs);
    s.warmup_epochs = 0;
    for (int k = 1; s.type == "step" && o.step_decay_epochs > 0; ++k) {
      const int64_t at = epoch_steps.StepAtEpoch(k * o.step_decay_epochs);
      if (at >= total_steps) break;
      if (at > 0 && (s.milestones.empty() || at > s.milestones.back())) {
        s.milestones.push_back(at);
      }
    }
  }
  if (o.schedule_override) {
    s = *o.schedule_override;
    if (s.total_steps == 0) s.total_steps = total_steps;
    s.steps_per_epoch = steps_per_epoch;
  }
  RETURN_IF_ERROR(optim::ValidateSchedule(s));
  return s;
}

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
  run->recorder_ = std::make_unique<RunRecorder>(
      options, run->comm_.get(), [loader = run->train_loader_.get()] { return loader->counters(); },
      run->total_steps_, run->images_per_step_);
  return run;
}

absl::Status RunSetup::BuildDistributed() {
  ASSIGN_OR_RETURN(comm_, JoinLaunchedJob(options_, &device_));
  return absl::OkStatus();
}

// Every rank starts from rank 0's weights (distributed_setup.h).
absl::Status RunSetup::BroadcastInitialWeights() {
  ASSIGN_OR_RETURN(RankSync sync, SetUpRankSync(options_, comm_.get(), *model_));
  dp_ = std::move(sync.dp);
  powersgd_ = std::move(sync.powersgd);
  diloco_ = std::move(sync.diloco);
  return absl::OkStatus();
}

bool RunSetup::AgreesOnStopAfter(int64_t step) const {
  return !diloco_ || step % options_.diloco_inner_steps == 0;
}

absl::StatusOr<bool> RunSetup::AnyRank(bool local) { return train::AnyRank(comm_.get(), local); }

absl::Status RunSetup::BuildData() {
  ASSIGN_OR_RETURN(RunData d, BuildRunData(options_, rank(), world_size()));
  train_loader_ = std::move(d.train);
  eval_loader_ = std::move(d.eval);
  class_names_ = std::move(d.class_names);
  const int64_t batches = train_loader_->batches_per_epoch();
  steps_per_epoch_ = batches / options_.gradient_accumulation_steps;
  if (steps_per_epoch_ == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the training set gives %d batches of %d per epoch, fewer than --gradient_accumulation_steps=%d",
        batches, options_.micro_batch_size, options_.gradient_accumulation_steps));
  }
  // Each epoch's own length: progressive stages with their own batch size change it (epoch_steps.h).
  ASSIGN_OR_RETURN(epoch_steps_, EpochSteps::Count(options_.epochs, options_.gradient_accumulation_steps,
                                                   [&](int64_t e) { return train_loader_->batches_in_epoch(e); }));
  total_steps_ = options_.max_steps > 0 ? options_.max_steps : epoch_steps_.total();
  cap_steps_ = total_steps_;
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
  std::vector<at::Tensor> params = optim::AllParams(groups);
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

  ASSIGN_OR_RETURN(schedule_, RunSchedule(options_, epoch_steps_, steps_per_epoch_, total_steps_));

  if (options_.ema_decay > 0) {
    optim::EmaOptions e;
    e.decay = options_.ema_decay;
    e.warmup = options_.ema_warmup_gamma > 0;
    if (e.warmup) e.warmup_gamma = options_.ema_warmup_gamma;
    e.warmup_power = options_.ema_warmup_power;
    ema_ = std::make_unique<optim::Ema>(model_->StateDict(), e);
  }
  if (options_.precision == "fp16") {
    optim::LossScalerOptions s;
    s.init_scale = options_.loss_scale_init;
    s.growth_interval = options_.loss_scale_window;
    if (options_.loss_scaler_override) s = *options_.loss_scaler_override;
    scaler_ = std::make_unique<optim::LossScaler>(s);
  }
  OptimizerStepParts parts;
  parts.params = std::move(params);
  parts.optimizer = optimizer_.get();
  parts.zero = zero_.get();
  parts.comm = comm_.get();
  parts.dp = dp_.get();
  parts.diloco = diloco_.get();
  parts.scaler = scaler_.get();
  parts.ema = ema_.get();
  parts.max_grad_norm = options_.gradient_clipping;
  parts.total_steps = total_steps_;
  step_ = std::make_unique<OptimizerStep>(std::move(parts));
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

absl::Status RunSetup::OpenOutputs(int64_t resumed_step) { return recorder_->Open(resumed_step); }

absl::Status RunSetup::StartEpoch(int64_t epoch) {
  epoch_ = epoch;
  return train_loader_->StartEpoch(epoch);
}

absl::StatusOr<std::optional<StepBatch>> RunSetup::NextBatch() {
  ASSIGN_OR_RETURN(std::optional<data::Batch> batch, train_loader_->Next());
  if (!batch) return std::optional<StepBatch>();
  StepBatch out;
  if (batch->images.size(0) == 0) {
    LOG(WARNING) << "rank " << rank() << ": every sample of batch " << batch->index_in_epoch
                 << " of epoch " << batch->epoch << " failed; this rank adds a zero gradient";
    out.images = batch->images;
    out.empty = true;
    return std::optional<StepBatch>(std::move(out));
  }
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
  ASSIGN_OR_RETURN(StepOutcome outcome, step_->Apply(step, LearningRate(step), loss_finite));
  last_grad_norm_ = outcome.grad_norm;
  return outcome.stepped;
}

absl::StatusOr<double> RunSetup::ForwardBackward(const StepBatch& batch, int64_t accum,
                                                 int64_t step) {
  if (batch.empty) {
    const int64_t size = batch.images.size(2) > 0 ? batch.images.size(2) : options_.image_size;
    RETURN_IF_ERROR(ZeroGradientPass(*model_, device_, train_loader_->channels(), size));
    return 0.0;
  }
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

absl::Status RunSetup::ApplyBudgetPlan(const BudgetPlan& plan) {
  TrainerOptions o = options_;
  if (plan.warmup_steps != warmup_steps()) {
    o.warmup_steps = plan.warmup_steps;
    o.warmup_epochs = 0;
    if (o.schedule_override) {
      o.schedule_override->warmup_steps = plan.warmup_steps;
      o.schedule_override->warmup_epochs = 0;
    }
  }
  if (o.schedule_override) o.schedule_override->total_steps = 0;  // the plan's
  ASSIGN_OR_RETURN(optim::ScheduleOptions s, RunSchedule(o, epoch_steps_, steps_per_epoch_, plan.total_steps));
  schedule_ = s;
  total_steps_ = plan.total_steps;
  step_->set_total_steps(total_steps_);
  recorder_->set_total_steps(total_steps_);
  return absl::OkStatus();
}

absl::StatusOr<double> RunSetup::EstimateEvalSeconds() {
  const int64_t samples = eval_loader_->num_samples();
  if (samples <= 0) return 0.0;
  const int64_t mine = (samples + world_size() - 1) / world_size();
  const int64_t batch = std::max<int64_t>(1, std::min(options_.micro_batch_size, mine));
  EvaluateOptions e;
  e.device = device_;
  e.precision = options_.precision;
  e.channels_last = options_.channels_last;
  ASSIGN_OR_RETURN(double per_batch, TimeEvalForward(*model_, e, batch, train_loader_->channels(),
                                                     options_.image_size));
  const double batches = std::ceil(static_cast<double>(mine) / static_cast<double>(batch));
  return batches * per_batch * (ema_ ? 2.0 : 1.0);
}

absl::Status RunSetup::MaxOverRanks(std::vector<double>* values) {
  if (!comm_) return absl::OkStatus();
  return comm_->AllReduceScalars(*values, distributed::ReduceOp::kMax);
}

absl::StatusOr<EvalResult> RunSetup::Evaluate(bool use_ema) {
  EvaluateOptions e;
  e.device = device_;
  e.precision = options_.precision;
  e.channels_last = options_.channels_last;
  EvalCounts counts;
  if (use_ema && ema_) {
    optim::Ema::SwapGuard swap = ema_->SwapIn();
    ASSIGN_OR_RETURN(counts, EvaluateModel(*model_, *eval_loader_, e));
  } else {
    ASSIGN_OR_RETURN(counts, EvaluateModel(*model_, *eval_loader_, e));
  }
  // Each rank evaluated its part of the eval set: the sums over ranks are the whole set's.
  ASSIGN_OR_RETURN(counts, SumOverRanks(counts, comm_.get()));
  return counts.ToResult();
}

void RunSetup::RecordTrainStep(int64_t step, double loss, double lr, bool skipped) {
  recorder_->RecordTrainStep(step, epoch_, loss, lr, last_grad_norm_, skipped);
}

void RunSetup::RecordEval(int64_t step, const EvalResult& raw, const EvalResult& ema) {
  recorder_->RecordEval(step, raw, ema_ ? &ema : nullptr);
}

std::vector<TrainResult::CommBytes> RunSetup::CommBytesByKind() const {
  return recorder_->CommBytesByKind();
}

void RunSetup::Close() {
  if (recorder_) recorder_->Close();  // null when Create() failed
}

}  // namespace cf::train
