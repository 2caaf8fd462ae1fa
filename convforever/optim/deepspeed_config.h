// DeepSpeed JSON configs (https://www.deepspeed.ai/docs/config-json/) as input to the trainer:
// parses the keys below into our options, resolving "auto" values from the trainer's flags as
// Hugging Face's DeepSpeed integration does. Supported keys:
//   train_batch_size, train_micro_batch_size_per_gpu, gradient_accumulation_steps  (int | "auto")
//   optimizer {type: Adam | AdamW | Lamb | SGD | Lion, params {lr, betas, eps, weight_decay,
//              momentum, nesterov, dampening, adam_w_mode, max_coeff, min_coeff}}
//   scheduler {type: WarmupLR | WarmupDecayLR | WarmupCosineLR | OneCycle, params {...}}
//   fp16 {enabled, loss_scale, initial_scale_power, loss_scale_window, hysteresis,
//         min_loss_scale}, bf16 {enabled}, gradient_clipping,
//   zero_optimization {stage, offload_optimizer {device}}
// Batch sizes follow DeepSpeed's rule train = micro x accum x world: any two of the three give
// the third (one alone: accum = 1), and all three must agree. Keys outside this list are
// collected in `unsupported_keys` and logged in ONE warning; wrong types, out-of-range values and
// contradictions are errors naming the key (and the file). Thread-safe (pure apart from reading
// the file and the one log line).
#ifndef CONVFOREVER_OPTIM_DEEPSPEED_CONFIG_H_
#define CONVFOREVER_OPTIM_DEEPSPEED_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/optim/loss_scaler_options.h"
#include "convforever/optim/optimizer_options.h"
#include "convforever/optim/schedule.h"

namespace cf::optim {

// What "auto" resolves to: the trainer's flags. Unset values leave an "auto" batch key to be
// derived by the batch rule; any other "auto" whose value is unset is an error.
struct DeepSpeedAutoValues {
  int64_t world_size = 1;
  std::optional<int64_t> micro_batch;   // per GPU
  std::optional<int64_t> grad_accum;
  std::optional<double> lr, weight_decay, beta1, beta2, eps;
  std::optional<int64_t> warmup_steps, total_steps;
  std::optional<double> max_grad_norm;  // gradient_clipping
  std::optional<bool> fp16, bf16;
};

// "diloco": ConvForever's own section, not DeepSpeed's: selects --sync=diloco
// (convforever/distributed/diloco.h); a key left out keeps its flag's value.
//   "diloco": {"inner_steps": 50, "outer_lr": 0.7, "outer_momentum": 0.9, "outer_nesterov": true,
//              "dtype": "int8", "int8_chunk": 4096, "fragments": 1, "overlap": false}
struct DeepSpeedDiLoCo {
  std::optional<int64_t> inner_steps, int8_chunk, fragments;
  std::optional<double> outer_lr, outer_momentum;
  std::optional<bool> outer_nesterov, overlap;
  std::optional<std::string> dtype;  // fp32 | bf16 | int8
};

struct DeepSpeedConfig {
  std::string source;  // the path, or "<inline json>"
  int64_t train_batch_size = 0;
  int64_t micro_batch_per_gpu = 0;
  int64_t gradient_accumulation_steps = 1;
  int64_t world_size = 1;
  bool has_optimizer = false;  // false: the trainer keeps its own optimizer settings
  OptimizerOptions optimizer;
  bool has_scheduler = false;
  ScheduleOptions schedule;  // total_steps / warmup from the config or its "auto" values
  bool fp16 = false;
  bool bf16 = false;
  LossScalerOptions loss_scaler;  // enabled == fp16; DeepSpeed's defaults when fp16 is on
  double gradient_clipping = 0.0;  // 0: off
  int zero_stage = 0;
  std::string offload_optimizer_device = "none";  // none | cpu
  bool has_diloco = false;
  DeepSpeedDiLoCo diloco;
  std::vector<std::string> unsupported_keys;       // dotted paths (sorted within a section)
};

// `path_or_json`: a file path, or JSON text when it starts with '{'.
absl::StatusOr<DeepSpeedConfig> ParseDeepSpeedConfig(const std::string& path_or_json,
                                                     const DeepSpeedAutoValues& from_flags);

}  // namespace cf::optim

#endif  // CONVFOREVER_OPTIM_DEEPSPEED_CONFIG_H_
