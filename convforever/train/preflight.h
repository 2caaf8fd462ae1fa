// The trainer binary's preflight mode (`train --preflight`, `tools/cf preflight`): what a careful
// engineer checks before paying for GPUs, for the run these TrainerOptions describe.
//
// Every check runs, whatever the others found (a failing one never stops the rest), and gives one
// row: check | ok / FAIL / warn / skip | detail. In order:
//   flags       ValidateOptions, and the DeepSpeed config when one is given;
//   data        the training data opens as the trainer opens it (a URL must answer within the
//               timeout first), its sample count, and one batch read;
//   schedule    the learning-rate schedule for the run's real step counts (RunSchedule), e.g. a
//               warmup longer than the run;
//   classes     the labels of the first `scan_samples` samples agree with the class list (jsonl
//               and wds names not in --class_list, numbers outside the classes, class names the
//               data defines differing from --class_list), naming the first offender and where;
//   heldout     the evaluation set the trainer would use (--eval_data_dir, --eval_fraction or the
//               data's test split) opens, and its size;
//   microbatch  the largest micro-batch (doubling up to the recipe's) whose real training steps
//               (the recipe's model, precision, image size, channels_last, checkpointing;
//               synthetic pixels) fit the memory budget; FAIL when the recipe's does not, with the
//               --micro_batch_size / --gradient_accumulation_steps that keep the global batch;
//   input       the real loader's images/s (augmentations, --num_workers) against the step's;
//               warn when the loader is the slower;
//   disk        free space under --run_dir against the checkpoints the run keeps;
//   hub         (--hub_repo) a token, whoami accepting it, and the repo's namespace writable;
//   hosts       (--hostfile) every host resolves and answers on its ssh port;
//   allreduce   (--hostfile) the ranks spawned (this binary, torchrun's variables; ssh for
//               remote hosts) join a Gloo group and all-reduce; the bandwidth;
//   time        the run's estimated training time from the measured step rate.
// Secrets (Hub tokens, credentials in URLs) never reach the table or the log.
// Nothing here reads flags: main.cc maps them.
#ifndef CONVFOREVER_TRAIN_PREFLIGHT_H_
#define CONVFOREVER_TRAIN_PREFLIGHT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "convforever/train/trainer.h"

namespace cf::train {

struct PreflightOptions {
  std::string deepspeed_config;  // checked (and applied) by the flags check; empty = none
  int64_t scan_samples = 2048;   // labels read by the classes check
  double memory_gb = 0;          // micro-batch budget per rank; 0 = this machine's (see preflight_memory.h)
  double timeout_s = 5;          // network probes: a URL, a host's ssh port, the all-reduce join
  std::string hostfile;          // DeepSpeed format; empty = no hosts/allreduce checks
  std::string self_path;         // this binary, for the all-reduce ranks (default /proc/self/exe)
};

enum class CheckStatus { kOk, kFail, kWarn, kSkip };
const char* CheckStatusName(CheckStatus s);  // "ok", "FAIL", "warn", "skip"

struct CheckRow {
  std::string name;
  CheckStatus status = CheckStatus::kOk;
  std::string detail;
};

// Runs every check; the rows in the order above.
std::vector<CheckRow> RunPreflight(const TrainerOptions& options, const PreflightOptions& preflight);

// The table, and a last line naming every failed check (or saying none failed).
std::string FormatPreflightTable(const std::vector<CheckRow>& rows);

// Runs the checks and prints the table to stdout. Returns the exit code: 0 when no check failed,
// else 1.
int PreflightMain(const TrainerOptions& options, const PreflightOptions& preflight);

// The rank side of the allreduce check (`train --preflight_allreduce`, started by the preflight
// with torchrun's variables): joins the Gloo group, all-reduces a tensor of `megabytes` MiB a few
// times, checks the sums, and rank 0 prints one line "preflight_allreduce: ...". Exit code 0 on
// success, 1 with the error on stderr.
int PreflightAllReduceMain(double timeout_s, double megabytes);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_PREFLIGHT_H_
