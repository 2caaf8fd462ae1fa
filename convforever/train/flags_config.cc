#include "convforever/train/flags_config.h"

#include <cstdio>
#include <vector>

#include "absl/strings/match.h"
#include "convforever/train/metrics.h"
#include "gflags/gflags.h"
#include "nlohmann/json.hpp"

namespace cf::train {

std::string FlagsAsJson() {
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  nlohmann::json j = nlohmann::json::object();
  for (const gflags::CommandLineFlagInfo& f : flags) {
    if (absl::StrContains(f.filename, "convforever/train/")) j[f.name] = f.current_value;
  }
  return StripSecrets(j).dump();
}

// TEMPORARY until convforever/optim's DeepSpeed parser lands in this branch.
absl::Status ApplyDeepSpeedConfig(const std::string& path, TrainerOptions* options) {
  return absl::UnimplementedError("--deepspeed_config: not wired yet");
}

void PrintSummary(const TrainerOptions& options, const TrainResult& result) {
  std::printf("\n%s after %lld steps", result.stopped_by_signal ? "stopped" : "finished",
              static_cast<long long>(result.steps));
  if (result.skipped_steps > 0) {
    std::printf(" (%lld skipped: non-finite)", static_cast<long long>(result.skipped_steps));
  }
  std::printf("\n");
  if (result.final_eval.samples > 0) {
    std::printf("test top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (%lld images)\n",
                100 * result.final_eval.top1, 100 * result.final_eval.top5, result.final_eval.loss,
                static_cast<long long>(result.final_eval.samples));
  }
  if (result.final_eval_ema.samples > 0) {
    std::printf("EMA  top-1 %.2f%%  top-5 %.2f%%\n", 100 * result.final_eval_ema.top1,
                100 * result.final_eval_ema.top5);
  }
  std::printf("best top-1 %.2f%%\n", 100 * result.best_top1);
  std::printf("checkpoint: %s\n", result.checkpoint_dir.c_str());
  std::printf("metrics:    %s (TensorBoard: tensorboard --logdir %s)\n",
              result.metrics_path.c_str(), options.run_dir.c_str());
  if (result.stopped_by_signal) {
    std::printf("resume with: tools/cf train <same flags> --resume=auto\n");
  }
  std::fflush(stdout);
}

}  // namespace cf::train
