// One training run's parts, built from TrainerOptions and owned together: device, model, train
// and eval loaders, optimizer + schedule, EMA, fp16 loss scaler, data parallelism, metric sinks
// and the checkpoint manager. The Trainer (trainer.cc) drives the loop; train_state.cc saves and
// restores the parts. This class builds them and does the mechanics of a micro-batch (to the
// device, forward, loss scaling, backward) and of evaluation; the rest it hands to one class
// each and forwards to:
//   run_data.h           the training and evaluation loaders, the held-out set, class names;
//   distributed_setup.h  joining the ranks, the initial broadcast, how gradients travel, AnyRank;
//   optimizer_step.h     one optimizer step (sync, unscale, skip, reduce, clip, step, EMA, DiLoCo);
//   run_recorder.h       metrics records, the progress line, the Hub uploader, comm byte counts.
//
// Several ranks come in two modes. Plain data parallel (--zero_stage=0): a DataParallel
// all-reduces gradients from autograd hooks and every rank holds the full optimizer state.
// ZeRO (--zero_stage=1|2, distributed::ZeroOptimizer): no hooks; gradients sum locally over the
// micro-steps, ApplyGradients reduces them (stage 1 all-reduce, stage 2 reduce-scatter), and each
// rank keeps the optimizer state of its 1/world_size shard only (the trainer's own optimizer on
// the shard, sharded_optimizer.h; optimizer() must not be called then, zero() is set). Plain data
// parallel with --sync=powersgd gives the DataParallel a distributed::PowerSgd reducer
// (powersgd() is set; each rank checkpoints its state). Rank 0's
// initial weights are broadcast in both modes. With one rank, --zero_stage is logged and ignored.
// DiLoCo (--sync=diloco, distributed::DiLoCo, diloco() set): no hooks and no per-step collective;
// ApplyGradients steps this rank's own optimizer and hands the step to DiLoCo, which runs the
// outer step every H steps. Also ignored with one rank.
//
// Not thread-safe: the training thread owns it. The loaders run their own worker threads.
#ifndef CONVFOREVER_TRAIN_RUN_SETUP_H_
#define CONVFOREVER_TRAIN_RUN_SETUP_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "convforever/data/loader.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/data_parallel.h"
#include "convforever/distributed/powersgd.h"
#include "convforever/distributed/diloco.h"
#include "convforever/distributed/zero_optimizer.h"
#include "convforever/models/model.h"
#include "convforever/optim/ema.h"
#include "convforever/optim/loss_scaler.h"
#include "convforever/optim/optimizer.h"
#include "convforever/optim/schedule.h"
#include "convforever/train/checkpoint.h"
#include "convforever/train/epoch_steps.h"
#include "convforever/train/hub_sync.h"
#include "convforever/train/optimizer_step.h"
#include "convforever/train/run_recorder.h"
#include "convforever/train/sharded_optimizer.h"
#include "convforever/train/time_budget.h"
#include "convforever/train/trainer.h"

namespace cf::train {

// A micro-batch on the training device.
struct StepBatch {
  at::Tensor images;   // [B, C, H, W] float32 (channels_last when asked)
  at::Tensor targets;  // [B] int64, or [B, K] float32 soft targets
  bool soft = false;   // soft targets already carry label smoothing
  bool empty = false;  // every sample failed: images [0, C, H, W], a zero-gradient pass (empty_step.h)
};

// The learning-rate schedule of a run of `total_steps` optimizer steps whose epochs are
// `epoch_steps` (`steps_per_epoch` of epoch 0): warmup, decay and milestones from the options (on
// the cumulative steps of their epochs when epochs differ in length), or the DeepSpeed config's
// schedule. An impossible one (warmup longer than the run) is an error naming the option.
absl::StatusOr<optim::ScheduleOptions> RunSchedule(const TrainerOptions& options, const EpochSteps& epoch_steps,
                                                    int64_t steps_per_epoch, int64_t total_steps);

class RunSetup {
 public:
  // Builds data, model, optimizer and the checkpoint manager. Metric outputs open later, with
  // OpenOutputs(), once the trainer knows whether it resumes.
  static absl::StatusOr<std::unique_ptr<RunSetup>> Create(const TrainerOptions& options);
  ~RunSetup();

  // Opens metrics.jsonl / TensorBoard / Trackio and logs the config (RunRecorder::Open). A run
  // resumed at `resumed_step` first drops the metrics.jsonl records of later steps (a killed run
  // logged them; the resumed run logs them again), so no step is recorded twice.
  absl::Status OpenOutputs(int64_t resumed_step);

  // --- data ---
  absl::Status StartEpoch(int64_t epoch);
  absl::StatusOr<std::optional<StepBatch>> NextBatch();
  // Micro-batches of the current epoch not yet taken (exact after a resume too).
  int64_t MicroBatchesLeftInEpoch() const;
  int64_t epoch() const { return epoch_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t total_steps() const { return total_steps_; }
  // The length --epochs / --max_steps give (total_steps() until a --time_budget plan changes it).
  int64_t cap_steps() const { return cap_steps_; }
  int64_t warmup_steps() const { return optim::WarmupSteps(schedule_); }
  int64_t images_per_step() const { return images_per_step_ * world_size(); }  // all ranks
  // --time_budget: the run becomes `plan.total_steps` long, and the schedule is rebuilt over it
  // with the plan's warmup (time_budget.h); the loop, DiLoCo's final sync and the progress line
  // follow. Every rank applies the same plan. Errors name the option (an impossible schedule).
  absl::Status ApplyBudgetPlan(const BudgetPlan& plan);
  // Seconds of one evaluation pass of this rank's part of the eval set (both passes with EMA),
  // from a timed forward pass of a micro-batch of zeros (the eval loader is not touched, the
  // weights and RNG states are unchanged). 0 when the eval set's size is unknown (streamed).
  absl::StatusOr<double> EstimateEvalSeconds();
  // Each value replaced by its maximum over the ranks (unchanged with one rank): a collective.
  absl::Status MaxOverRanks(std::vector<double>* values);
  int64_t eval_samples() const { return eval_loader_->num_samples(); }  // one evaluation pass

  // --- one optimizer step ---
  // Forward (under autocast for bf16/fp16), the classification loss, and backward of the loss
  // divided by `accum` (times the loss scale). Returns the unscaled loss; `step` only names the
  // step in an error. Backward runs even for a non-finite loss: with several ranks the others wait
  // for this rank's gradient buckets; ApplyGradients then skips the step on every rank.
  absl::StatusOr<double> ForwardBackward(const StepBatch& batch, int64_t accum, int64_t step);
  // The loss to call backward() on: multiplied by the fp16 loss scale when one is active.
  at::Tensor ScaleLoss(const at::Tensor& loss) const;
  // Data parallel: whether this micro-batch's backward all-reduces gradients (the last one of an
  // accumulation cycle). No-op with one rank and under ZeRO (which reduces in ApplyGradients).
  void SetGradientSync(bool sync);
  // Finishes gradient sync, unscales, checks for inf/NaN, clips, steps the optimizer with the
  // scheduled lr of `step` (0-based), zeroes gradients, updates EMA and the loss scaler. Returns
  // false when the step was skipped (non-finite loss or gradients); every rank takes the same
  // decision (DiLoCo: each rank skips alone, and after the step DiLoCo runs the outer step when
  // one is due; after the last step of the run, every fragment's, so all ranks end with the same
  // weights). Under ZeRO: unscale the local sums, agree on skipping, reduce, clip by the global
  // norm, step the shard and all-gather the parameters. The step itself: OptimizerStep.
  absl::StatusOr<bool> ApplyGradients(int64_t step, bool loss_finite);
  double LearningRate(int64_t step) const;

  // --- data parallel (one rank when not launched by torchrun/SLURM/DeepSpeed/mpirun) ---
  int rank() const { return comm_ ? comm_->rank() : 0; }
  int world_size() const { return comm_ ? comm_->world_size() : 1; }
  bool is_main() const { return rank() == 0; }
  // True when `local` is true on any rank (a stop signal, a non-finite loss): every rank then
  // takes the same decision at the same step. Without a communicator, `local` itself.
  absl::StatusOr<bool> AnyRank(bool local);
  // Whether the ranks agree on a stop after `step` steps (a collective). Under DiLoCo only at the
  // outer steps (multiples of H): the inner steps have no collective at all, and a stop there
  // checkpoints synchronised weights.
  bool AgreesOnStopAfter(int64_t step) const;
  // Every rank writes part of a checkpoint (ZeRO shards, PowerSGD's and DiLoCo's per-rank state).
  bool every_rank_checkpoints() const {
    return zero_ != nullptr || diloco_ != nullptr || powersgd_ != nullptr;
  }

  // --- evaluation and metrics ---
  absl::StatusOr<EvalResult> Evaluate(bool use_ema);
  bool has_ema() const { return ema_ != nullptr; }
  // These forward to the RunRecorder. RecordTrainStep adds the epoch and the grad norm of the
  // last ApplyGradients; RecordEval ignores `ema` without EMA.
  void RecordTrainStep(int64_t step, double loss, double lr, bool skipped);
  void RecordEval(int64_t step, const EvalResult& raw, const EvalResult& ema);
  const std::string& metrics_path() const { return recorder_->metrics_path(); }
  // Every byte this rank's collectives moved so far, by tensor kind (empty with one rank).
  std::vector<TrainResult::CommBytes> CommBytesByKind() const;
  void Close();

  // --- parts, for train_state.cc ---
  const TrainerOptions& options() const { return options_; }
  const c10::Device& device() const { return device_; }
  models::Model& model() { return *model_; }
  optim::Optimizer& optimizer() { return *optimizer_; }  // unsharded runs only (zero() null)
  distributed::Communicator* comm() { return comm_.get(); }     // null with one rank
  distributed::ZeroOptimizer* zero() { return zero_.get(); }    // non-null only under ZeRO
  distributed::PowerSgd* powersgd() { return powersgd_.get(); }  // --sync=powersgd, several ranks
  distributed::DiLoCo* diloco() { return diloco_.get(); }       // non-null only under DiLoCo
  OptimizerShardUpdater* zero_updater() { return zero_updater_; }  // the shard's optimizer
  optim::Ema* ema() { return ema_.get(); }
  optim::LossScaler* loss_scaler() { return scaler_.get(); }
  data::Loader& train_loader() { return *train_loader_; }
  CheckpointManager& checkpoints() { return *checkpoints_; }
  HubSync* hub() { return recorder_->hub(); }  // null without --hub_repo, and on ranks > 0
  const std::vector<std::string>& class_names() const { return class_names_; }
  void set_epoch(int64_t epoch) { epoch_ = epoch; }
  // The Trackio run this run logs to (empty without Trackio), kept in checkpoints for resume.
  const std::string& trackio_run_id() const { return recorder_->trackio_run_id(); }
  void set_trackio_run_id(std::string id) { recorder_->set_trackio_run_id(std::move(id)); }

 private:
  explicit RunSetup(const TrainerOptions& options);
  absl::Status BuildData();
  absl::Status BuildModel();
  absl::Status InitFromPretrained();
  absl::Status BuildOptimizer();
  absl::Status BuildCheckpoints();
  absl::Status BuildDistributed();
  absl::Status BroadcastInitialWeights();

  TrainerOptions options_;
  c10::Device device_{c10::kCPU};
  std::unique_ptr<distributed::Communicator> comm_;
  std::unique_ptr<distributed::DataParallel> dp_;
  std::shared_ptr<distributed::PowerSgd> powersgd_;  // dp_'s reducer under --sync=powersgd
  std::unique_ptr<distributed::DiLoCo> diloco_;  // --sync=diloco with several ranks
  std::unique_ptr<data::Loader> train_loader_;
  std::unique_ptr<data::Loader> eval_loader_;
  std::vector<std::string> class_names_;
  std::shared_ptr<models::Model> model_;
  std::unique_ptr<optim::Optimizer> optimizer_;       // null under ZeRO
  std::unique_ptr<distributed::ZeroOptimizer> zero_;         // ZeRO stage 1/2 with several ranks
  OptimizerShardUpdater* zero_updater_ = nullptr;     // owned by zero_
  optim::ScheduleOptions schedule_;
  std::unique_ptr<optim::Ema> ema_;
  std::unique_ptr<optim::LossScaler> scaler_;
  std::unique_ptr<OptimizerStep> step_;  // references the optimizer, scaler, EMA, dp_, diloco_
  std::unique_ptr<CheckpointManager> checkpoints_;
  std::unique_ptr<RunRecorder> recorder_;  // built last, in Create()
  int64_t epoch_ = 0;
  int64_t steps_per_epoch_ = 0;  // of epoch 0; epoch_steps_ has every epoch's
  EpochSteps epoch_steps_{{}, 0.0};
  int64_t total_steps_ = 0;
  int64_t cap_steps_ = 0;
  int64_t images_per_step_ = 0;
  double last_grad_norm_ = 0;  // of the last ApplyGradients, for RecordTrainStep
};

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_RUN_SETUP_H_
