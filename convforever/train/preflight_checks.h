// The preflight's checks (preflight.h), one function each, and what they hand to each other.
//
// RunPreflight (preflight.cc) calls them in order on one PreflightContext: the data check leaves
// the training loader and the run's step count, the microbatch check the parameter count and the
// measured step rate, the hosts check whether the all-reduce can be tried. A check that needs
// something an earlier one could not give reports skip (or says why) instead of failing twice.
// Each returns its row; errors become FAIL rows naming the culprit, never exceptions.
// Internal to the preflight; not thread-safe.
#ifndef CONVFOREVER_TRAIN_PREFLIGHT_CHECKS_H_
#define CONVFOREVER_TRAIN_PREFLIGHT_CHECKS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/data/loader.h"
#include "convforever/train/epoch_steps.h"
#include "convforever/train/preflight.h"
#include "convforever/train/trainer.h"

namespace cf::train::preflight {

// One line of a DeepSpeed hostfile: "HOST slots=N".
struct Host {
  std::string name;
  int slots = 1;
  bool local = false;  // localhost, 127.0.0.1, ::1 or this machine's name: nothing to connect to
};

struct Context {
  TrainerOptions options;      // with the DeepSpeed config applied when it parses
  PreflightOptions preflight;
  bool flags_ok = true;
  std::vector<Host> hosts;     // from --hostfile (empty without one, or when it does not parse)
  std::string hostfile_error;  // why it does not parse
  int world_size = 1;          // the hostfile's slots, else 1
  int local_ranks = 1;         // ranks on this machine (the hostfile's local hosts' slots)
  // data
  std::unique_ptr<data::Loader> train;  // rank 0 of world_size, after one batch
  int64_t total_steps = 0;              // the run's optimizer steps (0: unknown)
  int64_t steps_per_epoch = 0;          // of epoch 0, per rank
  std::optional<EpochSteps> epoch_steps;  // every epoch's length (set with total_steps)
  // microbatch
  int64_t params = 0;                   // the model's parameter count (0: not built)
  int64_t step_micro_batch = 0;         // the micro-batch the step rate was measured at
  double step_images_per_s = 0;         // forward + backward + optimizer step
  double loader_images_per_s = 0;       // the input check's
  bool hosts_ok = false;
};

CheckRow CheckFlags(Context& c);
CheckRow CheckData(Context& c);
CheckRow CheckSchedule(Context& c);
CheckRow CheckClasses(Context& c);
CheckRow CheckHeldOut(Context& c);
CheckRow CheckMicroBatch(Context& c);
CheckRow CheckInput(Context& c);
CheckRow CheckDisk(Context& c);
CheckRow CheckHub(Context& c);
CheckRow CheckHosts(Context& c);
CheckRow CheckAllReduce(Context& c);
CheckRow CheckTime(Context& c);

// "HOST slots=N" lines, '#' comments and blank lines ignored; errors name the file and line.
absl::StatusOr<std::vector<Host>> ReadHostfile(const std::string& path);

// "1.2 GiB", "512 MiB": bytes for a table cell.
std::string Bytes(double bytes);
// "3 h 12 min", "42 s".
std::string Duration(double seconds);

}  // namespace cf::train::preflight

#endif  // CONVFOREVER_TRAIN_PREFLIGHT_CHECKS_H_
