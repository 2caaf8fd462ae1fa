// What one training run reports as it goes: the metric records (metrics.jsonl, TensorBoard,
// Trackio through RunSinks), the Hub snapshots' uploader (HubSync), the progress line on stderr,
// and the evaluation log line. RunSetup builds one once the step counts are known and forwards
// to it; nothing here touches the model or the optimizer.
//
// Only rank 0 records: on other ranks Open() opens nothing and the Record calls count skipped
// steps only. Before Open() (and after Close()) nothing is written either, so a run that never
// opens its outputs (the lr finder, the calibration steps) can record freely. A train record is
// written every --log_every_steps steps and at the last step; its train/loss is the mean of the
// finite losses since the previous record, and its comm/ scalars are the bytes each kind of
// tensor moved per optimizer step since the previous record (taken from the communicator's
// ledger, which this class then owns the interval of).
//
// Not thread-safe: the training thread owns it (the sinks behind it are thread-safe).
#ifndef CONVFOREVER_TRAIN_RUN_RECORDER_H_
#define CONVFOREVER_TRAIN_RUN_RECORDER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "convforever/base/progress.h"
#include "convforever/data/loader.h"
#include "convforever/distributed/communicator.h"
#include "convforever/train/hub_sync.h"
#include "convforever/train/metrics.h"
#include "convforever/train/sinks.h"
#include "convforever/train/trainer.h"

namespace cf::train {

class RunRecorder {
 public:
  // `options` is copied. `comm` (null with one rank) gives the rank and the byte ledger and must
  // outlive this; `data_counters` reads the training loader's counters (throughput, skipped
  // samples). `total_steps` ends the progress line; `images_per_step` turns steps/s into img/s.
  RunRecorder(const TrainerOptions& options, distributed::Communicator* comm,
              std::function<data::Counters()> data_counters, int64_t total_steps,
              int64_t images_per_step);
  ~RunRecorder();

  // Opens metrics.jsonl / TensorBoard / Trackio (and the Hub uploader with --hub_repo) and logs
  // the config. A run resumed at `resumed_step` first drops the metrics.jsonl records of later
  // steps (a killed run logged them; the resumed run logs them again), so no step is recorded
  // twice. A no-op on ranks > 0.
  absl::Status Open(int64_t resumed_step);

  // One optimizer step: the progress line, and every --log_every_steps a metrics record.
  void RecordTrainStep(int64_t step, int64_t epoch, double loss, double lr, double grad_norm,
                       bool skipped);
  // One evaluation: logged, recorded and flushed. `ema` is null for a run without EMA.
  void RecordEval(int64_t step, const EvalResult& raw, const EvalResult* ema);
  // Finishes the progress line and closes the sinks (the Hub uploader stays, for Finish()).
  void Close();

  // Every byte this rank's collectives moved so far, by tensor kind (empty with one rank).
  std::vector<TrainResult::CommBytes> CommBytesByKind() const;

  const std::string& metrics_path() const { return metrics_path_; }  // empty before Open()
  HubSync* hub() { return hub_.get(); }  // null without --hub_repo, and on ranks > 0
  // The Trackio run logged to (empty without Trackio): set before Open() to continue a run.
  const std::string& trackio_run_id() const { return trackio_run_id_; }
  void set_trackio_run_id(std::string id) { trackio_run_id_ = std::move(id); }
  // The run's planned length changed (--time_budget): the progress line and the last step's record.
  void set_total_steps(int64_t total_steps) {
    total_steps_ = total_steps;
    if (progress_) progress_->set_total(total_steps);
  }

 private:
  void AppendCommScalars(int64_t step, Scalars* scalars);

  const TrainerOptions options_;
  distributed::Communicator* comm_;
  std::function<data::Counters()> data_counters_;
  int64_t total_steps_;
  const int64_t images_per_step_;
  std::unique_ptr<RunSinks> sinks_;
  std::unique_ptr<HubSync> hub_;
  std::string trackio_run_id_;
  std::unique_ptr<base::ProgressLine> progress_;
  std::string metrics_path_;
  double loss_window_sum_ = 0;
  int64_t loss_window_count_ = 0;
  int64_t skipped_total_ = 0;
  int64_t comm_logged_step_ = 0;
};

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_RUN_RECORDER_H_
