// Snapshots of a training run pushed to ONE Hugging Face Hub model repo, a commit per snapshot,
// from a background thread (convforever/hub AsyncUploader): training never waits on the network,
// a failed upload is logged and retried with the next snapshot, and Finish() makes the final one.
//
// A snapshot is a directory <run_dir>/hub/step-<N>/ holding model.safetensors + config.json in the
// layout Hugging Face tools load (transformers' ConvNextForImageClassification for ConvNeXt, with
// its preprocessor_config.json; timm's for other families) and a README.md model card with the
// run's metrics, flags and training curves so far (plots/*.png, drawn from metrics.jsonl by
// convforever/report). Snapshot directories are written before they are submitted and never
// changed afterwards; the uploader owns their deletion (it keeps the newest finished ones and
// never deletes one it may still read). Rank 0 only; not thread-safe.
#ifndef CONVFOREVER_TRAIN_HUB_SYNC_H_
#define CONVFOREVER_TRAIN_HUB_SYNC_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/hub/async_uploader.h"
#include "convforever/models/model.h"
#include "convforever/train/trainer.h"

namespace cf::train {

class HubSync {
 public:
  // Validates the repo id and reads the token/endpoint from the environment (HF_TOKEN, HF_HOME,
  // HF_ENDPOINT); nothing touches the network here.
  static absl::StatusOr<std::unique_ptr<HubSync>> Create(const TrainerOptions& options);

  // Writes the snapshot of `model` at `step` and queues it for upload.
  absl::Status Snapshot(int64_t step, int64_t epoch, const models::Model& model,
                        const std::vector<std::string>& class_names,
                        const std::vector<std::pair<std::string, double>>& metrics);
  // Waits (up to `timeout`) for the newest snapshot to be committed; logs the outcome.
  absl::Status Finish(absl::Duration timeout);
  hub::AsyncUploaderCounters counters() const { return uploader_->counters(); }

 private:
  HubSync(const TrainerOptions& options, std::unique_ptr<hub::AsyncUploader> uploader)
      : options_(options), uploader_(std::move(uploader)) {}

  const TrainerOptions options_;
  std::unique_ptr<hub::AsyncUploader> uploader_;
};

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_HUB_SYNC_H_
