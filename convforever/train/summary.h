// summary.json: a finished (or signal-stopped) run's results in one small file, for the tools
// that compare runs (the sweep runner's results table, the report, scripts).
//
// Written by rank 0 at the end of Train(), atomically, in the run directory. Fields (format
// "convforever.summary/1"): completed, stopped_by_signal, model, depth, params, image_size,
// gmacs_per_image (forward MACs of one image at the training size), micro_batch_size,
// gradient_accumulation_steps, world_size, steps, total_steps, samples_seen, train_flops
// (6 x MACs x samples: forward + backward; 8x with gradient checkpointing, which runs the forward
// twice), wall_seconds (the loop's wall time over all resumes, evaluations included),
// images_per_sec (samples_seen / wall_seconds), final_eval {loss, top1, top5, samples}
// (top-1/5 as fractions), final_eval_ema (with EMA only), best_top1, final_train_loss (mean of the
// last <= 50 steps this process ran; null when it ran none), and with several ranks
// communication {sync, payload_sent_bytes, payload_received_bytes, ring_sent_bytes,
// ring_received_bytes, by_kind {<kind>: {...}}}: rank 0's collectives in this process
// (convforever/distributed/byte_ledger.h), and with --time_budget time_budget {budget_seconds,
// planned (false when --epochs/--max_steps ended the run before the plan), and the plan's fields
// (time_budget.h's BudgetPlanJson: total_steps, images_per_sec, expected_seconds, ...)}. Non-finite numbers are strings
// ("NaN"), as in metrics.jsonl.
#ifndef CONVFOREVER_TRAIN_SUMMARY_H_
#define CONVFOREVER_TRAIN_SUMMARY_H_

#include "convforever/train/trainer.h"
#include "nlohmann/json.hpp"

namespace cf::train {

inline constexpr char kRunSummaryFormat[] = "convforever.summary/1";

nlohmann::json RunSummaryJson(const TrainerOptions& options, const TrainResult& result);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_SUMMARY_H_
