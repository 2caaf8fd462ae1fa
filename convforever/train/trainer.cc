#include "convforever/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/nn/module.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "convforever/base/allocator.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/cpu_isa.h"
#include "convforever/base/progress.h"
#include "convforever/base/signals.h"
#include "convforever/base/status_macros.h"
#include "convforever/distributed/launch_env.h"
#include "convforever/train/evaluate.h"
#include "convforever/train/op_profile.h"
#include "convforever/train/run_setup.h"
#include "convforever/models/registry.h"
#include "convforever/models/safetensors.h"
#include "convforever/train/summary.h"
#include "convforever/train/threads.h"
#include "convforever/train/train_state.h"
#include "glog/logging.h"

namespace cf::train {

// In memory with nothing to decode (threads.h): the loader's workers only copy and flip.
bool LightData(const TrainerOptions& o) {
  static const std::set<std::string>* kinds =
      new std::set<std::string>{"fashion_mnist", "idx", "cifar10", "cifar100", "synthetic"};
  return kinds->count(o.data) > 0 && o.randaugment.empty() && o.progressive_resize.empty();
}

// The allocator, then threads: LibTorch's intra-op pool shares the machine's cores with the data
// workers and with the other ranks launched on the same machine (threads.h).
void ConfigureRuntime(const TrainerOptions& o) {
  // Steps reuse the heap instead of page-faulting fresh mappings every step (see allocator.h).
  if (!base::KeepFreedMemoryForReuse()) LOG(INFO) << "malloc tuning unavailable (not glibc)";

  ThreadInputs in;
  in.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  in.num_workers = o.num_workers;
  in.light_data = LightData(o);
  in.threads_flag = o.threads;
  if (const char* omp = std::getenv("OMP_NUM_THREADS")) in.omp_num_threads = omp;
  // A malformed launch environment is reported when the run joins the job (RunSetup).
  absl::StatusOr<distributed::LaunchEnv> env = distributed::ReadLaunchEnv(distributed::LaunchOverrides{});
  if (env.ok()) in.local_world_size = env->local_world_size;
  const ThreadChoice choice = ChooseIntraOpThreads(in);
  at::set_num_threads(choice.threads);
  LOG(INFO) << "LibTorch intra-op threads: " << choice.threads << " (" << choice.why << ")";
  // The level our own CPU kernels run at (a bad CF_CPU_ISA: its error here, Train()'s error).
  LOG(INFO) << "CPU kernels: " << base::DescribeActiveCpuIsa();
}

class Trainer {
 public:
  explicit Trainer(const TrainerOptions& o) : o_(o) {}

  absl::StatusOr<TrainResult> Run() {
    start_ = absl::Now();
    ASSIGN_OR_RETURN(run_, RunSetup::Create(o_));
    RETURN_IF_ERROR(MaybeResume());
    RETURN_IF_ERROR(run_->OpenOutputs(step_));
    if (!o_.profile_steps.empty()) {
      ASSIGN_OR_RETURN(ProfileWindow window, ParseProfileSteps(o_.profile_steps));
      const std::string dir = run_->world_size() > 1
                                  ? absl::StrCat(o_.run_dir, "/profile/rank", run_->rank())
                                  : o_.run_dir + "/profile";
      profiler_ = std::make_unique<OpProfiler>(window, dir);
    }
    RETURN_IF_ERROR(StartBudget());
    result_.metrics_path = run_->metrics_path();
    // Only the stop decision agreed across ranks (AnyRank) ends the loop early, never the
    // local flag: a rank that left on its own would leave the others waiting in a collective.
    while (step_ < run_->total_steps() && !result_.stopped_by_signal) {
      absl::Status s = RunEpochUntilDone();
      if (absl::IsCancelled(s) && base::StopRequested()) {
        RETURN_IF_ERROR(StopWhileWaitingForData(s));
        break;
      }
      RETURN_IF_ERROR(s);
    }
    return Finish();
  }

 private:
  absl::Status MaybeResume() {
    if (o_.resume.empty()) return run_->StartEpoch(0);
    ASSIGN_OR_RETURN(std::optional<LoopState> resumed, LoadTrainState(o_.resume, run_.get()));
    if (!resumed) {
      LOG(INFO) << "resume=auto: no complete checkpoint in " << o_.run_dir << ", starting fresh";
      return run_->StartEpoch(0);
    }
    step_ = resumed->step;
    // The best so far comes back too: without it the first evaluation after a resume would be
    // "best" whatever its accuracy, and rotation would then delete the real best checkpoint.
    result_.best_top1 = resumed->best_metric;
    seconds_before_resume_ = resumed->train_seconds;
    plan_ = resumed->budget_plan;
    LOG(INFO) << "resumed at step " << step_ << " (epoch " << run_->epoch() << "), best top-1 so far "
              << absl::StrFormat("%.2f%%", 100 * result_.best_top1);
    if (!o_.init_from.empty()) {
      LOG(INFO) << "init_from: ignored, the resumed checkpoint has its own weights";
    }
    return absl::OkStatus();
  }

  // A stop signal woke a loader that was waiting for data (a stalled download, a slow source):
  // the step under way is not taken. Alone, the run checkpoints where it stands (when no
  // micro-batch of a step was consumed, the state is exact); with several ranks the others may
  // be inside a collective, so the last checkpoint stands.
  absl::Status StopWhileWaitingForData(const absl::Status& why) {
    result_.stopped_by_signal = true;
    LOG(WARNING) << "stop requested (signal " << base::StopSignal()
                 << ") while waiting for data: " << why.message();
    if (mid_step_ || run_->world_size() > 1) {
      LOG(WARNING) << "not checkpointing at step " << step_ << " ("
                   << (mid_step_ ? "inside an accumulation cycle" : "other ranks may be busy")
                   << "); the last checkpoint stands";
      return absl::OkStatus();
    }
    return SaveCheckpoint();
  }

  // Runs optimizer steps until the epoch's data ends, the step budget is spent or a stop signal
  // arrives. At an epoch's end: evaluate (if due), move the loader to the next epoch, then
  // checkpoint, so a resumed run starts the new epoch instead of re-ending the old one.
  absl::Status RunEpochUntilDone() {
    const int64_t first_step = step_;
    const bool fresh_epoch = run_->train_loader().state().batches_consumed == 0;
    while (step_ < run_->total_steps()) {
      if (profiler_) profiler_->BeforeStep(step_);
      const bool timed = window_ && window_->Times(step_);
      const absl::Time step_start = absl::Now();
      ASSIGN_OR_RETURN(bool got_step, RunOneStep());
      if (got_step && timed) window_->Add(absl::ToDoubleSeconds(absl::Now() - step_start));
      if (profiler_ && got_step) RETURN_IF_ERROR(profiler_->AfterStep(step_ - 1));
      if (!got_step && fresh_epoch && step_ == first_step) {
        // Another epoch would end the same way: never loop over empty epochs.
        std::string skipped;
        for (const auto& [reason, n] : run_->train_loader().counters().skipped) {
          absl::StrAppend(&skipped, skipped.empty() ? "" : ", ", reason, " ", n);
        }
        return absl::FailedPreconditionError(absl::StrCat(
            "epoch ", run_->epoch(), " gave no optimizer step: the training data yielded fewer than "
            "--gradient_accumulation_steps=", o_.gradient_accumulation_steps, " batches (skipped: ",
            skipped.empty() ? "none" : skipped, ")"));
      }
      if (!got_step) {
        if (o_.eval_every_steps == 0) RETURN_IF_ERROR(RunEvaluation());
        RETURN_IF_ERROR(run_->StartEpoch(run_->epoch() + 1));
        if (o_.checkpoint_every_steps == 0) RETURN_IF_ERROR(SaveCheckpoint());
        return absl::OkStatus();
      }
      if (window_ && window_->timed() > 0) RETURN_IF_ERROR(MaybePlanBudget());
      if (o_.eval_every_steps > 0 && step_ % o_.eval_every_steps == 0) {
        RETURN_IF_ERROR(RunEvaluation());
      }
      if (o_.checkpoint_every_steps > 0 && step_ % o_.checkpoint_every_steps == 0) {
        RETURN_IF_ERROR(SaveCheckpoint());
      }
      MaybeUploadSnapshot(/*final_snapshot=*/false);
      if (!run_->AgreesOnStopAfter(step_)) continue;  // DiLoCo: only at outer steps
      ASSIGN_OR_RETURN(bool stopping, run_->AnyRank(base::StopRequested()));
      if (stopping) {
        LOG(WARNING) << "stop requested (signal " << base::StopSignal()
                     << "): checkpointing at step " << step_;
        result_.stopped_by_signal = true;
        return SaveCheckpoint();
      }
    }
    return absl::OkStatus();
  }

  // One optimizer step over `accum` micro-batches. Returns false at the end of the epoch, which is
  // when fewer than `accum` micro-batches remain: a partial accumulation is never applied (the
  // remainder is dropped, as drop_last does for a partial batch).
  absl::StatusOr<bool> RunOneStep() {
    const int64_t accum = o_.gradient_accumulation_steps;
    if (run_->MicroBatchesLeftInEpoch() < accum) return false;
    double loss_sum = 0;
    int64_t empty = 0;  // micro-batches whose samples all failed: a zero gradient from this rank
    bool finite = true;
    for (int64_t micro = 0; micro < accum; ++micro) {
      absl::StatusOr<std::optional<StepBatch>> got = [&] {
        RECORD_FUNCTION("cf::next_batch", std::vector<c10::IValue>());  // named in profiles
        return run_->NextBatch();
      }();
      if (!got.ok()) mid_step_ = micro > 0;
      ASSIGN_OR_RETURN(std::optional<StepBatch> batch, std::move(got));
      if (!batch) {
        if (micro == 0) return false;
        return absl::InternalError("data ended in the middle of an accumulation cycle");
      }
      run_->SetGradientSync(micro + 1 == accum);
      ASSIGN_OR_RETURN(double loss, run_->ForwardBackward(*batch, accum, step_));
      if (batch->empty) {
        ++empty;
        continue;
      }
      finite = finite && std::isfinite(loss);
      loss_sum += loss;
    }
    absl::StatusOr<bool> apply = [&] {
      RECORD_FUNCTION("cf::optimizer_step", std::vector<c10::IValue>());
      return run_->ApplyGradients(step_, finite);
    }();
    ASSIGN_OR_RETURN(bool applied, std::move(apply));
    const double mean_loss = empty < accum ? loss_sum / static_cast<double>(accum - empty)
                                           : std::numeric_limits<double>::quiet_NaN();
    if (!applied) {
      ++result_.skipped_steps;
      if (++nonfinite_in_a_row_ >= o_.max_nonfinite_steps) {
        return absl::AbortedError(absl::StrFormat(
            "%d optimizer steps in a row had a non-finite loss or gradient (last loss %g at step "
            "%d): lower --lr, enable --gradient_clipping, or use --precision=bf16 instead of fp16",
            nonfinite_in_a_row_, mean_loss, step_));
      }
    } else {
      nonfinite_in_a_row_ = 0;
    }
    ++step_;
    result_.step_losses.push_back(mean_loss);
    run_->RecordTrainStep(step_, mean_loss, run_->LearningRate(step_ - 1), !applied);
    return true;
  }

  // --time_budget (time_budget.h). A resumed run with a plan continues it; otherwise the steps of
  // a window from here on are timed and the plan made once they suffice.
  absl::Status StartBudget() {
    if (plan_ && o_.time_budget_s <= 0) {
      LOG(WARNING) << "the checkpoint's run was planned by --time_budget=" << FormatBudget(plan_->budget_seconds)
                   << " (" << plan_->total_steps << " steps); without --time_budget this run goes to "
                   << run_->total_steps() << " steps with that length's schedule";
      plan_.reset();
      return absl::OkStatus();
    }
    if (o_.time_budget_s <= 0) return absl::OkStatus();
    if (!plan_) {
      window_.emplace(step_, o_.time_budget_s);
      LOG(INFO) << "time budget " << FormatBudget(o_.time_budget_s) << ": timing steps from step "
                << window_->first_timed_step() + 1 << ", then planning the run's length (cap "
                << run_->cap_steps() << " steps)";
      return absl::OkStatus();
    }
    if (plan_->budget_seconds != o_.time_budget_s) {
      LOG(WARNING) << "--time_budget=" << FormatBudget(o_.time_budget_s) << " ignored: the resumed run "
                   << "keeps the plan of its checkpoint (" << FormatBudget(plan_->budget_seconds)
                   << "), so its schedule stays the same";
    }
    // This run's cap (its own --epochs / --max_steps) over the plan's budgeted steps: the same
    // length when the flags are the same.
    const int64_t total = std::min(plan_->budget_steps, run_->cap_steps());
    if (total != plan_->total_steps) {
      LOG(INFO) << "time budget: the cap is now " << run_->cap_steps() << " steps: the plan's "
                << plan_->total_steps << " steps become " << total << " (the budget allows "
                << plan_->budget_steps << ")";
      plan_->total_steps = total;
      plan_->capped = run_->cap_steps() < plan_->budget_steps;
      plan_->cap_steps = run_->cap_steps();
    }
    RETURN_IF_ERROR(run_->ApplyBudgetPlan(*plan_));
    const double left = PredictSeconds(BudgetInputsNow(plan_->step_seconds, plan_->eval_seconds,
                                                       plan_->checkpoint_seconds), plan_->total_steps);
    LOG(INFO) << absl::StrFormat(
        "time budget %s: resuming the plan of %d steps (made at step %d, %.0f images/s); %s spent "
        "before this resume; expected end %s (%s of the budget)",
        FormatBudget(plan_->budget_seconds), plan_->total_steps, plan_->planned_at_step,
        plan_->images_per_sec, FormatBudget(seconds_before_resume_), EndClock(left),
        FormatBudget(left));
    return absl::OkStatus();
  }

  // What PlanBudget needs, as of now, with the measured costs.
  BudgetInputs BudgetInputsNow(double step_seconds, double eval_seconds, double checkpoint_seconds) const {
    BudgetInputs in;
    in.budget_seconds = plan_ ? plan_->budget_seconds : o_.time_budget_s;
    in.elapsed_seconds = TrainSeconds();
    in.steps_done = step_;
    in.step_seconds = step_seconds;
    in.images_per_step = run_->images_per_step();
    in.eval_seconds = eval_seconds;
    in.checkpoint_seconds = checkpoint_seconds;
    in.cap_steps = run_->cap_steps();
    in.eval_every_steps = o_.eval_every_steps;
    in.checkpoint_every_steps = o_.checkpoint_every_steps;
    in.steps_per_epoch = run_->steps_per_epoch();
    in.warmup_steps = run_->warmup_steps();
    if (o_.sync == "diloco" && run_->world_size() > 1) in.multiple_of = o_.diloco_inner_steps;
    return in;
  }

  // The wall-clock time `seconds_from_start` after this run's start (resumes included), as HH:MM:SS.
  std::string EndClock(double seconds_from_start) const {
    const absl::Time end = absl::Now() + absl::Seconds(seconds_from_start - TrainSeconds());
    return absl::FormatTime("%H:%M:%S", end, absl::LocalTimeZone());
  }

  // Every rank calls this after the same steps (the window is counted in steps, the decision is
  // agreed by AnyRank), and plans from the slowest rank's figures, so all get the same plan.
  absl::Status MaybePlanBudget() {
    ASSIGN_OR_RETURN(bool enough, run_->AnyRank(window_->Enough()));
    if (!enough) return absl::OkStatus();
    ASSIGN_OR_RETURN(double eval_seconds, run_->EstimateEvalSeconds());
    std::vector<double> costs = {window_->seconds_per_step(), eval_seconds, TrainSeconds()};
    RETURN_IF_ERROR(run_->MaxOverRanks(&costs));
    BudgetInputs in = BudgetInputsNow(costs[0], costs[1],
                                      CheckpointSecondsGuess(models::CountParameters(run_->model())));
    in.elapsed_seconds = costs[2];
    const int64_t timed = window_->timed();
    window_.reset();
    ASSIGN_OR_RETURN(BudgetPlan plan, PlanBudget(in));
    RETURN_IF_ERROR(run_->ApplyBudgetPlan(plan));
    plan_ = plan;
    LOG(INFO) << DescribePlan(plan, EndClock(plan.expected_seconds)) << " [" << timed << " steps timed]";
    return absl::OkStatus();
  }

  absl::Status RunEvaluation() {
    if (evaluated_at_step_ == step_) return absl::OkStatus();
    evaluated_at_step_ = step_;
    ASSIGN_OR_RETURN(result_.final_eval, run_->Evaluate(/*use_ema=*/false));
    if (run_->has_ema()) {
      ASSIGN_OR_RETURN(result_.final_eval_ema, run_->Evaluate(/*use_ema=*/true));
    }
    const double top1 = std::max(result_.final_eval.top1, result_.final_eval_ema.top1);
    is_best_ = top1 > result_.best_top1;
    if (is_best_) result_.best_top1 = top1;
    run_->RecordEval(step_, result_.final_eval, result_.final_eval_ema);
    return absl::OkStatus();
  }

  absl::Status SaveCheckpoint() {
    if (saved_at_step_ == step_) return absl::OkStatus();
    saved_at_step_ = step_;
    // Plain data parallel: identical weights, rank 0 writes, every rank hands it its RNG state.
    // ZeRO, PowerSGD and DiLoCo: every rank writes its own part (optimizer shard, PowerSGD errors,
    // DiLoCo's inner state) into rank 0's directory (train_state.cc).
    const LoopState loop{step_, result_.best_top1, TrainSeconds(), plan_};
    ASSIGN_OR_RETURN(std::string dir, SaveTrainState(loop, is_best_, run_.get()));
    if (!dir.empty()) result_.checkpoint_dir = dir;
    is_best_ = false;
    return absl::OkStatus();
  }

  // A Hub snapshot every --upload_every steps and at the end; a failure never stops training.
  void MaybeUploadSnapshot(bool final_snapshot) {
    HubSync* hub = run_->hub();
    if (hub == nullptr || uploaded_at_step_ == step_) return;
    if (!final_snapshot && (o_.upload_every <= 0 || step_ % o_.upload_every != 0)) return;
    uploaded_at_step_ = step_;
    std::vector<std::pair<std::string, double>> metrics;
    if (!result_.step_losses.empty()) metrics.emplace_back("train_loss", result_.step_losses.back());
    if (result_.final_eval.samples > 0) {
      metrics.emplace_back("top1", 100 * result_.final_eval.top1);
      metrics.emplace_back("top5", 100 * result_.final_eval.top5);
    }
    absl::Status s = hub->Snapshot(step_, run_->epoch(), run_->model(), run_->class_names(), metrics);
    if (!s.ok()) LOG(WARNING) << "hub snapshot at step " << step_ << ": " << s;
  }

  absl::StatusOr<TrainResult> Finish() {
    if (!result_.stopped_by_signal) {
      RETURN_IF_ERROR(RunEvaluation());
      RETURN_IF_ERROR(SaveCheckpoint());
    }
    MaybeUploadSnapshot(/*final_snapshot=*/true);
    if (HubSync* hub = run_->hub()) (void)hub->Finish(absl::Minutes(10));  // logged inside
    result_.steps = step_;
    result_.total_steps = run_->total_steps();
    result_.world_size = run_->world_size();
    result_.samples_seen = step_ * o_.micro_batch_size * o_.gradient_accumulation_steps *
                           run_->world_size();
    result_.params = models::CountParameters(run_->model());
    result_.gmacs_per_image = run_->model().ForwardMacs(o_.image_size) / 1e9;
    result_.train_seconds = TrainSeconds();
    result_.budget_plan = plan_;
    result_.comm_bytes = run_->CommBytesByKind();
    run_->Close();
    if (run_->is_main()) {
      const std::string path = o_.run_dir + "/summary.json";
      absl::Status s = base::WriteFileAtomically(path, RunSummaryJson(o_, result_).dump(2) + "\n");
      if (!s.ok()) LOG(WARNING) << "run summary not written: " << s;
    }
    return result_;
  }

  // Wall time of the training loop (setup, steps, evaluations, checkpoints) over this run's life,
  // resumes included.
  double TrainSeconds() const {
    return seconds_before_resume_ + absl::ToDoubleSeconds(absl::Now() - start_);
  }

  const TrainerOptions& o_;
  std::unique_ptr<RunSetup> run_;
  TrainResult result_;
  int64_t step_ = 0;
  int nonfinite_in_a_row_ = 0;
  std::unique_ptr<OpProfiler> profiler_;  // --profile_steps
  bool mid_step_ = false;  // data failed (a stop) after some micro-batches of a step
  int64_t evaluated_at_step_ = -1;
  int64_t saved_at_step_ = -1;
  int64_t uploaded_at_step_ = -1;
  bool is_best_ = false;
  absl::Time start_;
  double seconds_before_resume_ = 0;
  std::optional<StepWindow> window_;  // --time_budget: timing the steps before the plan
  std::optional<BudgetPlan> plan_;    // --time_budget: the plan, once made (or resumed)
};

absl::StatusOr<EvalResult> EvaluateCheckpoint(const TrainerOptions& options,
                                              const std::string& checkpoint, bool use_ema) {
  RETURN_IF_ERROR(ValidateOptions(options));
  RETURN_IF_ERROR(base::ActiveCpuIsa().status());
  ConfigureRuntime(options);
  ASSIGN_OR_RETURN(std::unique_ptr<RunSetup> run, RunSetup::Create(options));
  std::string dir = checkpoint;
  if (checkpoint == "latest" || checkpoint == "best") {
    CheckpointManager& manager = run->checkpoints();
    if (checkpoint == "latest") {
      ASSIGN_OR_RETURN(std::optional<CheckpointInfo> latest, manager.FindLatestComplete(/*clean=*/false));
      if (latest) dir = latest->path;
    } else {
      ASSIGN_OR_RETURN(std::optional<BestCheckpoint> best, manager.Best());
      if (best) dir = best->path;
    }
    if (dir == checkpoint) {
      return absl::NotFoundError(absl::StrCat("--checkpoint=", checkpoint, ": no complete checkpoint in ",
                                              options.run_dir, "/checkpoints"));
    }
  }
  const std::string file = dir + (use_ema ? "/ema.safetensors" : "/model.safetensors");
  ASSIGN_OR_RETURN(models::NamedTensors weights, models::ReadSafetensors(file));
  RETURN_IF_ERROR(LoadModelState(weights, file, &run->model()));
  LOG(INFO) << "evaluating " << file;
  return run->Evaluate(/*use_ema=*/false);
}

absl::StatusOr<TrainResult> Train(const TrainerOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  RETURN_IF_ERROR(base::ActiveCpuIsa().status());  // CF_CPU_ISA names a level this CPU runs
  ConfigureRuntime(options);
  Trainer trainer(options);
  return trainer.Run();
}

}  // namespace cf::train
