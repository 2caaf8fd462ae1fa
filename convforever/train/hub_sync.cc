#include "convforever/train/hub_sync.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"
#include "convforever/hub/model_card.h"
#include "convforever/models/export.h"
#include "convforever/report/report.h"
#include "convforever/train/preprocessor_config.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

// Finished snapshot folders kept on disk (the newest); the uploader deletes older ones, and never
// the one it is reading or the pending one (convforever/hub/async_uploader.h).
constexpr int kKeepFinishedSnapshots = 2;

}  // namespace

absl::StatusOr<std::unique_ptr<HubSync>> HubSync::Create(const TrainerOptions& options) {
  if (absl::Status s = hub::ValidateRepoId(options.hub_repo); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--hub_repo: ", s.message()));
  }
  hub::AsyncUploaderOptions u;
  u.repo = hub::RepoId{options.hub_repo, hub::RepoType::kModel};
  u.private_repo = options.hub_private;
  u.keep_finished = kKeepFinishedSnapshots;
  auto uploader = std::make_unique<hub::AsyncUploader>(hub::HubClientOptions::FromEnvironment(), u);
  return std::unique_ptr<HubSync>(new HubSync(options, std::move(uploader)));
}

absl::Status HubSync::Snapshot(int64_t step, int64_t epoch, const models::Model& model,
                               const std::vector<std::string>& class_names,
                               const std::vector<std::pair<std::string, double>>& metrics) {
  const bool transformers = model.family() == "convnext";
  const models::WeightFormat format =
      transformers ? models::WeightFormat::kTransformers : models::WeightFormat::kTimm;
  const std::string dir = absl::StrFormat("%s/hub/step-%08d", options_.run_dir, step);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // a re-run of the same step replaces its snapshot
  RETURN_IF_ERROR(models::SaveModel(model, dir, format, class_names, options_.image_size));
  if (transformers) {
    const int channels = static_cast<int>(model.StateDict().front().second.size(1));  // stem [C0, C, k, k]
    RETURN_IF_ERROR(base::WriteFileAtomically(dir + "/preprocessor_config.json",
                                              PreprocessorConfigJson(options_, channels)));
  }

  hub::ModelCardOptions card;
  card.repo_id = options_.hub_repo;
  card.model_name = options_.model;
  card.description = absl::StrCat("Trained with ConvForever (", options_.model, " on ",
                                  options_.data, "), snapshot at step ", step, ".");
  card.library_name = transformers ? "transformers" : "timm";
  card.metrics = metrics;
  card.step = step;
  card.epoch = epoch;
  nlohmann::json flags = nlohmann::json::parse(options_.config_json, nullptr, false);
  if (flags.is_object()) {
    for (const auto& [name, value] : flags.items()) {
      card.flags.emplace_back(name, value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
  // The run's curves so far, for the card; a snapshot without them is still worth uploading.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> plots =
      report::WriteRunPngs(options_.run_dir, dir + "/plots");
  if (plots.ok()) {
    for (const auto& [title, file] : *plots) card.images.emplace_back(title, "plots/" + file);
  } else {
    LOG(WARNING) << "hub snapshot at step " << step << ": no training curves (" << plots.status() << ")";
  }
  RETURN_IF_ERROR(base::WriteFileAtomically(dir + "/README.md", hub::ModelCard(card)));
  // From here the folder belongs to the uploader, which deletes it once it is finished with it.
  uploader_->Submit(dir, absl::StrCat("ConvForever snapshot: step ", step));
  return absl::OkStatus();
}

absl::Status HubSync::Finish(absl::Duration timeout) {
  absl::Status s = uploader_->Flush(timeout);
  const hub::AsyncUploaderCounters c = uploader_->counters();
  if (s.ok()) {
    LOG(INFO) << "hub: " << c.uploaded << " snapshot commit(s) to " << options_.hub_repo;
  } else {
    LOG(WARNING) << "hub: final upload to " << options_.hub_repo << " failed (" << s.message()
                 << "); the snapshot is in " << options_.run_dir
                 << "/hub/ and `tools/cf hub upload` can push it";
  }
  return s;
}

}  // namespace cf::train
