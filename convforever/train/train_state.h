// Saving and restoring a training run's complete state, for exact resume.
//
// A checkpoint directory (managed by CheckpointManager: temp dir, fsync, rename, DONE) holds:
//   model.safetensors      weights + buffers under timm's names (loads into timm unchanged)
//   config.json            timm-style model config (architecture, num_classes, label_names)
//   optimizer.safetensors  optimizer slots "<param>/<slot>" (unsharded runs)
//   zero_rank<r>_of<W>.pt  ZeRO runs instead: one per rank r of W, written by that rank
//                          (distributed::ZeroOptimizer::SaveShard: its master weights and optimizer
//                          state, sharded_optimizer.h); the directory must be shared by the ranks
//   powersgd_rank<r>_of<W>.pt  --sync=powersgd: rank r's error buffers and warm-start Q's
//                          (distributed::PowerSgd::SaveState), one per rank, written by that rank
//   rng_rank<r>.bin        ranks r > 0 of a multi-rank run: their RNG states (rank 0's are in
//                          trainer_state.json; plain data parallel gathers them to rank 0,
//                          rank_rng.h, the other modes write their own); restored by the same rank
//                          of a run with the same world size, else rank 0's is used (a warning)
//   diloco_outer.safetensors, diloco_rank<r>_of<W>.safetensors
//                          --sync=diloco: the outer state (rank 0) and each rank's own inner
//                          optimizer state, error feedback and weights (diloco_state.h)
//   ema.safetensors        EMA shadow weights (when EMA is on)
//   trainer_state.json     format_version, step, epoch, data-loader position, optimizer/EMA meta,
//                          loss-scaler state, RNG states, best metric, the run's flags, the
//                          --time_budget plan (time_budget.h) once made, and the world size, and {"zero": {"stage", "world_size"}} for a ZeRO
//                          checkpoint
// Rank 0 writes everything but the other ranks' parts. Under ZeRO, PowerSGD and DiLoCo every rank takes part in
// SaveTrainState (two barriers around rank 0's writer; see train_state.cc); a rank that dies
// mid-save leaves the others to the communicator's timeout, and the temp directory unused.
// Restoring checks names and shapes and reports the first mismatch; a checkpoint from another
// model or optimizer is an error, never a silent partial load. A ZeRO checkpoint resumes only
// under ZeRO (stage 1 or 2) with the same world size (else an error naming the directory and both
// world sizes); an unsharded one resumes under ZeRO too (each rank keeps its elements).
#ifndef CONVFOREVER_TRAIN_TRAIN_STATE_H_
#define CONVFOREVER_TRAIN_TRAIN_STATE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "convforever/train/run_setup.h"

namespace cf::train {

inline constexpr int kTrainStateFormatVersion = 1;

// What the trainer's loop keeps besides the parts RunSetup owns.
struct LoopState {
  int64_t step = 0;
  double best_metric = 0;    // best held-out top-1 so far (raw or EMA), what best.json points at
  double train_seconds = 0;  // training-loop wall time of this run so far, over all its resumes
  // --time_budget: the plan once made ("time_budget" in trainer_state.json); a resumed run keeps it.
  std::optional<BudgetPlan> budget_plan;
};

// Writes a checkpoint of `run` at `loop.step`; returns its directory (plain data parallel: "" on
// ranks > 0, which only hand rank 0 their RNG states). Called by every rank, at the same step.
absl::StatusOr<std::string> SaveTrainState(const LoopState& loop, bool is_best, RunSetup* run);

// `resume` is "auto" (newest complete checkpoint under the run directory; none = nullopt) or a
// checkpoint directory. Returns the loop state to continue from (checkpoints written before the
// loop state had `train_seconds` resume with 0 there).
absl::StatusOr<std::optional<LoopState>> LoadTrainState(const std::string& resume, RunSetup* run);

// Copies `tensors` into the model's parameters and buffers (timm names), strictly: every model
// tensor must be present with its shape; extra names are errors. `source` names the file.
absl::Status LoadModelState(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                            const std::string& source, models::Model* model);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_TRAIN_STATE_H_
