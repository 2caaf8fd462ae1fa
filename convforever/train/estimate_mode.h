// The trainer binary's estimate mode (`train --estimate`, `tools/cf train --estimate`): the GPU-
// hours, dollars and per-GPU memory a run with these TrainerOptions would take, on a GPU from the
// table (convforever/plan/gpus.csv) or on this machine, for one or several depths.
//
// It builds the run as Train() would (RunSetup: the data's sample counts, the model, the
// optimizer) in a scratch run directory that it removes, then asks convforever/plan for the
// arithmetic. Data that is not present here (a jsonl/wds/imagenet path that does not open) needs
// `samples` (the model is then built on synthetic data of the same shape). With `calibrate`, it
// also runs real training steps (forward + loss + backward + the trainer's optimizer step on
// --device, after warm-up; median) on the training loader's batches when the data is here (its
// workers then share the cores as in training), else on a synthetic micro-batch of the recipe's
// shape, and forward-only evaluation batches of that shape, and measures the device's peak (CPU: a large fp32 matmul; CUDA: the
// table's row for `calibrate_gpu`). `gpu == "local"` predicts this machine's wall time from the
// measured times directly (calibration is implied). Nothing here reads flags: main.cc maps them.
#ifndef CONVFOREVER_TRAIN_ESTIMATE_MODE_H_
#define CONVFOREVER_TRAIN_ESTIMATE_MODE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/plan/report.h"
#include "convforever/train/trainer.h"

namespace cf::train {

struct EstimateRequest {
  std::string gpu = "rtx4090";          // a row of gpu_table, or "local" (this machine, --device)
  int gpus = 1;
  double price_per_hour = -1;           // < 0: the table's usd_per_hour (0 for local)
  std::string gpu_table = "convforever/plan/gpus.csv";
  int64_t samples = 0;                  // > 0: training images in total (wins over epochs/max_steps)
  int64_t eval_samples = -1;            // >= 0: images per evaluation pass (default: the eval data's)
  std::vector<int> depths;              // convforever only; empty = the options' depth
  bool calibrate = false;
  int calibrate_steps = 5;              // timed steps (after 2 warm-up steps)
  std::string calibrate_gpu;            // --device=cuda: this machine's GPU row (default: gpu)
  double link_gbps = 128;               // ring bandwidth per GPU (PCIe 4.0 x16 class)
  double utilization = 0;               // > 0 overrides the default / calibrated utilisation
};

absl::StatusOr<plan::EstimateReport> Estimate(const TrainerOptions& options,
                                              const EstimateRequest& request);

// Runs Estimate and prints the table (or JSON with `json`), writing the JSON also to
// `json_path` when non-empty. Returns the process exit code (errors go to stderr).
int EstimateMain(const TrainerOptions& options, const EstimateRequest& request, bool json,
                 const std::string& json_path);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_ESTIMATE_MODE_H_
