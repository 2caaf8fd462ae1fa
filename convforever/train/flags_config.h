// The trainer binary's glue between gflags and TrainerOptions that main.cc would otherwise grow:
// the flags as JSON (stored in checkpoints and metric stores), a DeepSpeed JSON config applied on
// top of the flags, and the closing summary. Used by main.cc only.
#ifndef CONVFOREVER_TRAIN_FLAGS_CONFIG_H_
#define CONVFOREVER_TRAIN_FLAGS_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "convforever/train/trainer.h"

namespace cf::train {

// Every flag defined by the trainer's main.cc, name -> current value (strings, as typed).
std::string FlagsAsJson();

// Parses a DeepSpeed config (convforever/optim/deepspeed_config) with its "auto" values taken
// from `options` (micro batch, accumulation, world size, lr, ...) and writes the resolved values
// back into `options`. Unsupported keys are listed in one warning; contradictions are errors.
absl::Status ApplyDeepSpeedConfig(const std::string& path, TrainerOptions* options);

// The closing lines: final accuracy (raw and EMA), best, steps, where the checkpoint and metrics are.
void PrintSummary(const TrainerOptions& options, const TrainResult& result);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_FLAGS_CONFIG_H_
