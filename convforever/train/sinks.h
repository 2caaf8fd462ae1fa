// The trainer's metric outputs for one run, opened together: metrics.jsonl, TensorBoard event
// files and the Trackio store, behind one MultiSink, plus the system-metrics sampler feeding it.
//
//   <run_dir>/metrics.jsonl            JsonlSink
//   <run_dir>/tensorboard/events...    TensorBoardSink (tensorboard --logdir <run_dir>/tensorboard)
//   $TRACKIO_DIR/<project>.db          TrackioSink (trackio show --project <project>)
//
// Only rank 0 of a distributed run should open these. RunSinks owns everything it opened; its
// destructor stops the sampler first (so nothing logs into a closed sink), then closes the sinks.
// sink() is thread-safe like the sinks behind it.
#ifndef CONVFOREVER_TRAIN_SINKS_H_
#define CONVFOREVER_TRAIN_SINKS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "convforever/train/metrics.h"
#include "convforever/train/system_metrics.h"
#include "convforever/train/trackio.h"

namespace cf::train {

struct RunSinksOptions {
  std::string run_dir;  // required; created if missing
  bool jsonl = true;
  bool tensorboard = true;
  std::string tensorboard_dir;  // empty: <run_dir>/tensorboard
  bool trackio = true;
  // run_name empty: the run directory's last path component.
  TrackioOptions trackio_options;
  // Zero or negative: no system metrics.
  absl::Duration system_metrics_interval = absl::Seconds(10);
  std::function<Scalars()> system_metrics_extra;  // GPU metrics hook, see system_metrics.h
};

class RunSinks {
 public:
  // Opens every enabled output; the first failure is returned (naming its path) and whatever
  // was opened is closed again.
  static absl::StatusOr<std::unique_ptr<RunSinks>> Open(const RunSinksOptions& options);
  ~RunSinks();

  MetricSink* sink() { return &multi_; }
  // Null when Trackio is disabled. Its run_id() belongs in the trainer state for --resume.
  TrackioSink* trackio() { return trackio_; }
  // Stops the sampler, then flushes and closes every sink; idempotent.
  absl::Status Close();

 private:
  RunSinks() = default;

  MultiSink multi_;
  TrackioSink* trackio_ = nullptr;  // owned by multi_
  std::unique_ptr<SystemMetricsSampler> sampler_;
  bool closed_ = false;
};

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_SINKS_H_
