#include "convforever/train/train_state.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <ATen/core/grad_mode.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"
#include "convforever/models/export.h"
#include "convforever/models/safetensors.h"
#include "convforever/train/metrics.h"
#include "convforever/train/rng_state.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

using Json = nlohmann::json;
const std::map<std::string, std::string> kPtFormat = {{"format", "pt"}};

absl::StatusOr<Json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  Json j = Json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::DataLossError(absl::StrCat(path, ": not valid JSON"));
  return j;
}

absl::Status WriteCheckpointFiles(const std::string& dir, int64_t step, double best_metric,
                                  RunSetup* run) {
  RETURN_IF_ERROR(models::WriteSafetensors(dir + "/model.safetensors", run->model().StateDict(),
                                           kPtFormat));
  ASSIGN_OR_RETURN(std::string model_config, models::ConfigJson(run->model(), models::WeightFormat::kTimm,
                                                         run->class_names(), run->options().image_size));
  RETURN_IF_ERROR(base::WriteFileAtomically(dir + "/config.json", model_config));
  models::NamedTensors optimizer_tensors;
  Json optimizer_meta;
  RETURN_IF_ERROR(run->optimizer().SaveState(&optimizer_tensors, &optimizer_meta));
  RETURN_IF_ERROR(models::WriteSafetensors(dir + "/optimizer.safetensors", optimizer_tensors,
                                           kPtFormat));
  ASSIGN_OR_RETURN(RngState rng, CaptureRngState({}));
  Json state = {{"format_version", kTrainStateFormatVersion},
                {"step", step},
                {"epoch", run->epoch()},
                {"loader", Json::parse(run->train_loader().state().ToJson())},
                {"optimizer", optimizer_meta},
                {"best_metric", JsonNumberOrString(best_metric)},
                {"rng", absl::Base64Escape(EncodeRngState(rng))}};
  if (optim::Ema* ema = run->ema()) {
    models::NamedTensors ema_tensors;
    Json ema_meta;
    RETURN_IF_ERROR(ema->SaveState(&ema_tensors, &ema_meta));
    RETURN_IF_ERROR(models::WriteSafetensors(dir + "/ema.safetensors", ema_tensors, kPtFormat));
    state["ema"] = ema_meta;
  }
  if (optim::LossScaler* scaler = run->loss_scaler()) state["loss_scaler"] = scaler->SaveState();
  if (!run->trackio_run_id().empty()) state["trackio_run_id"] = run->trackio_run_id();
  Json config = Json::parse(run->options().config_json, nullptr, false);
  if (!config.is_discarded()) state["config"] = StripSecrets(config);
  return base::WriteFileAtomically(dir + "/trainer_state.json", state.dump(2));
}

absl::StatusOr<std::string> ResolveCheckpointDir(const std::string& resume, RunSetup* run) {
  if (resume != "auto") {
    if (!std::filesystem::exists(resume + "/DONE")) {
      return absl::NotFoundError(absl::StrCat(
          "--resume=", resume, ": not a complete checkpoint directory (no DONE marker)"));
    }
    return resume;
  }
  ASSIGN_OR_RETURN(std::optional<CheckpointInfo> latest, run->checkpoints().FindLatestComplete());
  return latest ? latest->path : std::string();
}

}  // namespace

absl::Status LoadModelState(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                            const std::string& source, models::Model* model) {
  std::map<std::string, at::Tensor> by_name(tensors.begin(), tensors.end());
  at::NoGradGuard no_grad;
  for (auto& [name, target] : model->StateDict()) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": missing tensor '", name, "'"));
    }
    if (it->second.sizes() != target.sizes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": tensor '", name, "' has shape ", c10::str(it->second.sizes()),
          ", the model wants ", c10::str(target.sizes())));
    }
    target.copy_(it->second);
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": unexpected tensor '", by_name.begin()->first, "' (", by_name.size(),
        " names the model does not have: a checkpoint of another model?)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SaveTrainState(int64_t step, bool is_best, double best_metric,
                                           RunSetup* run) {
  return run->checkpoints().Save(
      step,
      [&](const std::string& dir) { return WriteCheckpointFiles(dir, step, best_metric, run); },
      is_best, best_metric);
}

absl::StatusOr<std::optional<int64_t>> LoadTrainState(const std::string& resume, RunSetup* run) {
  ASSIGN_OR_RETURN(std::string dir, ResolveCheckpointDir(resume, run));
  if (dir.empty()) return std::optional<int64_t>();
  ASSIGN_OR_RETURN(Json state, ReadJsonFile(dir + "/trainer_state.json"));
  if (state.value("format_version", 0) != kTrainStateFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, "/trainer_state.json: format_version ", state.value("format_version", 0),
        ", this trainer reads ", kTrainStateFormatVersion));
  }
  try {
    ASSIGN_OR_RETURN(models::NamedTensors weights, models::ReadSafetensors(dir + "/model.safetensors"));
    RETURN_IF_ERROR(LoadModelState(weights, dir + "/model.safetensors", &run->model()));
    ASSIGN_OR_RETURN(models::NamedTensors opt, models::ReadSafetensors(dir + "/optimizer.safetensors"));
    RETURN_IF_ERROR(run->optimizer().LoadState(opt, state.at("optimizer")));
    if (optim::Ema* ema = run->ema()) {
      if (!state.contains("ema")) {
        return absl::FailedPreconditionError(dir + ": EMA is on but the checkpoint has no EMA state");
      }
      ASSIGN_OR_RETURN(models::NamedTensors shadow, models::ReadSafetensors(dir + "/ema.safetensors"));
      RETURN_IF_ERROR(ema->LoadState(shadow, state.at("ema")));
    }
    if (optim::LossScaler* scaler = run->loss_scaler(); scaler && state.contains("loss_scaler")) {
      RETURN_IF_ERROR(scaler->LoadState(state.at("loss_scaler")));
    }
    std::string rng_blob;
    if (!absl::Base64Unescape(state.at("rng").get<std::string>(), &rng_blob)) {
      return absl::DataLossError(dir + "/trainer_state.json: rng is not base64");
    }
    ASSIGN_OR_RETURN(RngState rng, DecodeRngState(rng_blob));
    RETURN_IF_ERROR(RestoreRngState(rng, {}));
    ASSIGN_OR_RETURN(data::LoaderState loader, data::LoaderState::FromJson(state.at("loader").dump()));
    RETURN_IF_ERROR(run->train_loader().Restore(loader));
    run->set_epoch(state.at("epoch").get<int64_t>());
    run->set_trackio_run_id(state.value("trackio_run_id", ""));
    return std::optional<int64_t>(state.at("step").get<int64_t>());
  } catch (const Json::exception& e) {
    return absl::DataLossError(absl::StrCat(dir, "/trainer_state.json: ", e.what()));
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat(dir, ": ", e.what_without_backtrace()));
  }
}

}  // namespace cf::train
