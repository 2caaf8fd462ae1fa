#include "convforever/train/sinks.h"

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/train/tensorboard.h"

namespace cf::train {
namespace {

std::string LastComponent(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RunSinks>> RunSinks::Open(const RunSinksOptions& options) {
  if (options.run_dir.empty()) return absl::InvalidArgumentError("RunSinks: run_dir is empty");
  std::unique_ptr<RunSinks> sinks(new RunSinks());
  if (options.jsonl) {
    ASSIGN_OR_RETURN(std::unique_ptr<JsonlSink> jsonl, JsonlSink::Open(options.run_dir));
    sinks->multi_.Add(std::move(jsonl));
  }
  if (options.tensorboard) {
    const std::string dir = options.tensorboard_dir.empty()
                                ? absl::StrCat(options.run_dir, "/tensorboard")
                                : options.tensorboard_dir;
    ASSIGN_OR_RETURN(std::unique_ptr<TensorBoardSink> tb, TensorBoardSink::Open(dir));
    sinks->multi_.Add(std::move(tb));
  }
  if (options.trackio) {
    TrackioOptions trackio_options = options.trackio_options;
    if (trackio_options.run_name.empty()) trackio_options.run_name = LastComponent(options.run_dir);
    ASSIGN_OR_RETURN(std::unique_ptr<TrackioSink> trackio, TrackioSink::Open(trackio_options));
    sinks->trackio_ = trackio.get();
    sinks->multi_.Add(std::move(trackio));
  }
  if (options.system_metrics_interval > absl::ZeroDuration()) {
    SystemMetricsOptions system;
    system.interval = options.system_metrics_interval;
    system.extra = options.system_metrics_extra;
    sinks->sampler_ = std::make_unique<SystemMetricsSampler>(system, &sinks->multi_);
    RETURN_IF_ERROR(sinks->sampler_->Start());
  }
  return sinks;
}

RunSinks::~RunSinks() { Close().IgnoreError(); }

absl::Status RunSinks::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  if (sampler_) sampler_->Stop();
  absl::Status flushed = multi_.Flush();
  absl::Status closed = multi_.Close();
  return flushed.ok() ? closed : flushed;
}

}  // namespace cf::train
