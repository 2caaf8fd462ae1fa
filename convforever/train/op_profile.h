// Per-op CPU time of a window of training steps (`--profile_steps=A:B`), from LibTorch's profiler.
//
// The profiler records every ATen op and every named region (RECORD_FUNCTION: our own kernels
// `cf::...`, the optimizer step, waiting for the next batch) on the training thread between the
// start of step A and the end of step B-1 (steps counted from 0, as the trainer's step counter).
// At the end of the window it writes into `dir`:
//   - trace.json: the Chrome trace of the window (Perfetto, chrome://tracing);
//   - ops.json:   {"steps": N, "wall_us": W, "ops": [{"name", "calls", "self_us", "total_us"}]},
//     sorted by self time. An op's self time is its duration less that of the ops it called on
//     the same thread (what torch.profiler's key_averages() reports as self_cpu_time_total), so
//     the self times of one thread add up to the time spent inside ops; `wall_us` is the window's
//     wall time, the rest being time outside any op.
// and logs the top ops per step. tools/bench/train_reference.py writes the same ops.json from
// torch.profiler, so //convforever/train:train_benchmark prints both side by side.
#ifndef CONVFOREVER_TRAIN_OP_PROFILE_H_
#define CONVFOREVER_TRAIN_OP_PROFILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cf::train {

// "A:B" with 0 <= A < B: profile steps [A, B).
struct ProfileWindow {
  int64_t first = 0;
  int64_t end = 0;
};
absl::StatusOr<ProfileWindow> ParseProfileSteps(const std::string& spec);

// One interval of a thread's trace.
struct OpEvent {
  std::string name;
  uint64_t thread = 0;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
};

struct OpTime {
  std::string name;
  int64_t calls = 0;
  double self_us = 0;
  double total_us = 0;
};

// Per name: calls, total time and self time (less the direct children on the same thread, an
// event being a child of the innermost event that encloses it). Sorted by self time, largest first.
std::vector<OpTime> AggregateOpTimes(std::vector<OpEvent> events);

class OpProfiler {
 public:
  OpProfiler(ProfileWindow window, std::string dir);
  // A run that ends inside the window logs that no profile was written.
  ~OpProfiler();
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  // Call before step `step` runs: starts the profiler at the window's first step.
  void BeforeStep(int64_t step);
  // Call after step `step` ran (its number before the increment): at the window's last step,
  // stops the profiler and writes trace.json and ops.json. A write failure is returned.
  absl::Status AfterStep(int64_t step);

 private:
  ProfileWindow window_;
  std::string dir_;
  bool running_ = false;
  uint64_t start_ns_ = 0;
};

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_OP_PROFILE_H_
