#include "convforever/train/run_recorder.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "convforever/base/status_macros.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace cf::train {

RunRecorder::RunRecorder(const TrainerOptions& options, distributed::Communicator* comm,
                         std::function<data::Counters()> data_counters, int64_t total_steps,
                         int64_t images_per_step)
    : options_(options),
      comm_(comm),
      data_counters_(std::move(data_counters)),
      total_steps_(total_steps),
      images_per_step_(images_per_step) {}

RunRecorder::~RunRecorder() = default;

absl::Status RunRecorder::Open(int64_t resumed_step) {
  if (comm_ && comm_->rank() != 0) return absl::OkStatus();  // metrics and progress: rank 0
  RunSinksOptions s;
  s.run_dir = options_.run_dir;
  s.tensorboard = options_.tensorboard;
  s.trackio = !options_.trackio_project.empty();
  s.trackio_options.project = options_.trackio_project;
  s.trackio_options.run_name = options_.run_name;
  s.trackio_options.run_id = trackio_run_id_;  // continue the same Trackio run after a resume
  ASSIGN_OR_RETURN(sinks_, RunSinks::Open(s));
  if (!options_.hub_repo.empty()) {
    ASSIGN_OR_RETURN(hub_, HubSync::Create(options_));
  }
  metrics_path_ = options_.run_dir + "/metrics.jsonl";
  if (sinks_->trackio() != nullptr) trackio_run_id_ = sinks_->trackio()->run_id();
  // A killed run logged steps past its last checkpoint; the resumed run logs them again.
  if (resumed_step > 0) RETURN_IF_ERROR(sinks_->sink()->DiscardAfter(resumed_step));
  nlohmann::json config = nlohmann::json::parse(options_.config_json, nullptr, false);
  if (config.is_discarded()) config = nlohmann::json::object();
  RETURN_IF_ERROR(sinks_->sink()->LogConfig(config));
  base::ProgressOptions p;
  p.label = "train";
  p.unit = "step";
  p.total = total_steps_;
  progress_ = std::make_unique<base::ProgressLine>(p);
  return absl::OkStatus();
}

void RunRecorder::RecordTrainStep(int64_t step, int64_t epoch, double loss, double lr,
                                  double grad_norm, bool skipped) {
  if (skipped) ++skipped_total_;
  if (!sinks_) return;
  if (std::isfinite(loss)) {
    loss_window_sum_ += loss;
    ++loss_window_count_;
  }
  const data::Counters c = data_counters_();
  progress_->Update(step, absl::StrFormat("epoch %d | loss %.4f | lr %.3g | %.0f img/s", epoch,
                                          loss, lr, progress_->rate() * images_per_step_));
  if (step % options_.log_every_steps != 0 && step != total_steps_) return;
  Scalars s = {{"train/loss", loss_window_count_ > 0 ? loss_window_sum_ / loss_window_count_ : loss},
               {"train/step_loss", loss},
               {"train/lr", lr},
               {"train/grad_norm", grad_norm},
               {"train/epoch", static_cast<double>(epoch)},
               {"train/images_per_sec", progress_->rate() * images_per_step_},
               {"train/skipped_steps", static_cast<double>(skipped_total_)},
               {"data/images_per_sec", c.images_per_sec}};
  for (const auto& [reason, n] : c.skipped) s.emplace_back("data/skipped/" + reason, n);
  AppendCommScalars(step, &s);
  loss_window_sum_ = 0;
  loss_window_count_ = 0;
  if (absl::Status st = sinks_->sink()->Log(step, s); !st.ok()) LOG(WARNING) << "metrics: " << st;
}

// Bytes per optimizer step since the last log line (payload by kind, and the ring model's), and
// the payload sent so far: what the low-bandwidth modes are judged by.
void RunRecorder::AppendCommScalars(int64_t step, Scalars* s) {
  if (!comm_) return;
  const int64_t steps = std::max<int64_t>(1, step - comm_logged_step_);
  comm_logged_step_ = step;
  const distributed::ByteLedger::PerKind interval = comm_->ledger().TakeInterval();
  for (int k = 0; k < distributed::kNumTensorKinds; ++k) {
    if (interval[k].collectives == 0) continue;
    const std::string kind = distributed::TensorKindName(static_cast<distributed::TensorKind>(k));
    s->emplace_back("comm/" + kind + "/sent_bytes_per_step",
                    static_cast<double>(interval[k].payload_sent) / steps);
  }
  const distributed::ByteCounts sum = distributed::Sum(interval);
  s->emplace_back("comm/sent_bytes_per_step", static_cast<double>(sum.payload_sent) / steps);
  s->emplace_back("comm/received_bytes_per_step", static_cast<double>(sum.payload_received) / steps);
  s->emplace_back("comm/ring_sent_bytes_per_step", static_cast<double>(sum.ring_sent) / steps);
  s->emplace_back("comm/total_sent_bytes", static_cast<double>(comm_->ledger().Total().payload_sent));
}

std::vector<TrainResult::CommBytes> RunRecorder::CommBytesByKind() const {
  std::vector<TrainResult::CommBytes> out;
  if (!comm_) return out;
  const distributed::ByteLedger::PerKind totals = comm_->ledger().Totals();
  for (int k = 0; k < distributed::kNumTensorKinds; ++k) {
    if (totals[k].collectives == 0) continue;
    out.push_back({distributed::TensorKindName(static_cast<distributed::TensorKind>(k)),
                   totals[k].payload_sent, totals[k].payload_received, totals[k].ring_sent,
                   totals[k].ring_received, totals[k].collectives});
  }
  return out;
}

void RunRecorder::RecordEval(int64_t step, const EvalResult& raw, const EvalResult* ema) {
  if (!sinks_) return;
  Scalars s = {{"eval/loss", raw.loss}, {"eval/top1", raw.top1}, {"eval/top5", raw.top5}};
  std::string line = absl::StrFormat("eval step %d: loss %.4f top-1 %.2f%% top-5 %.2f%%", step,
                                     raw.loss, 100 * raw.top1, 100 * raw.top5);
  if (ema != nullptr) {
    s.insert(s.end(), {{"eval_ema/loss", ema->loss}, {"eval_ema/top1", ema->top1}, {"eval_ema/top5", ema->top5}});
    absl::StrAppendFormat(&line, " | EMA top-1 %.2f%%", 100 * ema->top1);
  }
  LOG(INFO) << line << " (" << raw.samples << " images)";
  if (absl::Status st = sinks_->sink()->Log(step, s); !st.ok()) LOG(WARNING) << "metrics: " << st;
  if (absl::Status st = sinks_->sink()->Flush(); !st.ok()) LOG(WARNING) << "metrics: " << st;
}

void RunRecorder::Close() {
  if (progress_) progress_->Finish();
  progress_.reset();
  if (sinks_) {
    if (absl::Status st = sinks_->Close(); !st.ok()) LOG(WARNING) << "metrics: " << st;
    sinks_.reset();
  }
}

}  // namespace cf::train
