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
#include "convforever/train/diloco_state.h"
#include "convforever/train/metrics.h"
#include "convforever/train/rank_rng.h"
#include "convforever/train/rng_state.h"
#include "convforever/train/sharded_optimizer.h"
#include "glog/logging.h"
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

absl::Status WriteCheckpointFiles(const std::string& dir, const LoopState& loop, RunSetup* run) {
  RETURN_IF_ERROR(models::WriteSafetensors(dir + "/model.safetensors", run->model().StateDict(),
                                           kPtFormat));
  ASSIGN_OR_RETURN(std::string model_config, models::ConfigJson(run->model(), models::WeightFormat::kTimm,
                                                         run->class_names(), run->options().image_size));
  RETURN_IF_ERROR(base::WriteFileAtomically(dir + "/config.json", model_config));
  ASSIGN_OR_RETURN(RngState rng, CaptureRngState({}));
  Json state = {{"format_version", kTrainStateFormatVersion},
                {"step", loop.step},
                {"epoch", run->epoch()},
                {"loader", Json::parse(run->train_loader().state().ToJson())},
                {"best_metric", JsonNumberOrString(loop.best_metric)},
                {"train_seconds", loop.train_seconds},
                {"world_size", run->world_size()},  // whose rng_rank<r>.bin files these are
                {"rng", absl::Base64Escape(EncodeRngState(rng))}};
  if (loop.budget_plan) state["time_budget"] = BudgetPlanJson(*loop.budget_plan);
  if (run->zero() != nullptr) {
    // The optimizer state is in the ranks' zero_rank<r>_of<W>.pt files (SaveShardedTrainState).
    state["zero"] = {{"stage", run->options().zero_stage}, {"world_size", run->world_size()}};
  } else {
    models::NamedTensors optimizer_tensors;
    Json optimizer_meta;
    RETURN_IF_ERROR(run->optimizer().SaveState(&optimizer_tensors, &optimizer_meta));
    RETURN_IF_ERROR(models::WriteSafetensors(dir + "/optimizer.safetensors", optimizer_tensors,
                                             kPtFormat));
    state["optimizer"] = optimizer_meta;
  }
  if (run->diloco() != nullptr) state["diloco"] = DiLoCoCheckpointJson(run);
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
  // Only rank 0 cleans leftovers: ranks removing the same directories at once race.
  ASSIGN_OR_RETURN(std::optional<CheckpointInfo> latest,
                   run->checkpoints().FindLatestComplete(/*clean=*/run->is_main()));
  return latest ? latest->path : std::string();
}

// Whether the checkpoint's optimizer state fits this run, checked before anything is loaded:
// a ZeRO checkpoint needs ZeRO over the same number of ranks (the shards split the state by
// rank); stage 1 and 2 shards are alike (the stage only changes how gradients are reduced).
absl::Status CheckZeroCompatible(const std::string& dir, const Json& state, RunSetup* run) {
  if (!state.contains("zero")) return absl::OkStatus();  // unsharded: loads into either
  const int stage = state["zero"].value("stage", 0);
  const int world = state["zero"].value("world_size", 0);
  const std::string what = absl::StrCat(dir, " holds ZeRO stage ", stage,
                                        " optimizer state sharded over ", world,
                                        " ranks (zero_rank<r>_of", world, ".pt)");
  if (run->zero() == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, "; this run has world size ", run->world_size(), " without ZeRO (--zero_stage=",
        run->options().zero_stage, "): resume it with ", world,
        " ranks and --zero_stage=1 or 2 (tools/cf launch -n ", world, " -- ...)"));
  }
  if (world != run->world_size()) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, "; this run has world size ", run->world_size(), " (--zero_stage=",
        run->options().zero_stage, "): sharded state resumes only with the same world size "
        "(relaunch with -n ", world, ")"));
  }
  if (stage != run->options().zero_stage) {
    LOG(INFO) << what << "; continuing with --zero_stage=" << run->options().zero_stage
              << " (the shards of stage 1 and 2 are the same)";
  }
  return absl::OkStatus();
}

// Optimizer state into the run: the unsharded file, this rank's shard file, or (unsharded
// checkpoint, ZeRO run) this rank's elements of the unsharded file.
absl::Status LoadOptimizerState(const std::string& dir, const Json& state, RunSetup* run) {
  if (run->zero() == nullptr) {
    ASSIGN_OR_RETURN(models::NamedTensors opt, models::ReadSafetensors(dir + "/optimizer.safetensors"));
    return run->optimizer().LoadState(opt, state.at("optimizer"));
  }
  if (state.contains("zero")) {
    RETURN_IF_ERROR(run->zero()->LoadShard(dir));
  } else {
    ASSIGN_OR_RETURN(models::NamedTensors opt, models::ReadSafetensors(dir + "/optimizer.safetensors"));
    absl::Status s = run->zero_updater()->LoadUnshardedState(opt, state.at("optimizer"));
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat(dir, "/optimizer.safetensors: ", s.message()));
    LOG(INFO) << "ZeRO: took this rank's shard of the unsharded optimizer state in " << dir;
  }
  // The shard's master copy must hold the weights just loaded into the model.
  return CopyParamsIntoShard(run->model().named_parameters(/*recurse=*/true).pairs(), *run->zero());
}

// Ranks > 0 draw different dropout / drop-path masks (their generators are seeded seed + rank);
// under ZeRO, where every rank writes anyway, each keeps its generators in rng_rank<r>.bin so a
// resumed run draws what the uninterrupted one would have (rank 0's are in trainer_state.json).
std::string RankRngPath(const std::string& dir, int rank) {
  return absl::StrCat(dir, "/rng_rank", rank, ".bin");
}

absl::Status WriteRankRngState(const std::string& dir, int rank) {
  ASSIGN_OR_RETURN(RngState rng, CaptureRngState({}));
  return base::WriteFileAtomically(RankRngPath(dir, rank), EncodeRngState(rng));
}

// The blob of this rank's generators: rank 0's from trainer_state.json, the others' from their
// rng_rank<r>.bin when the checkpoint has one, else rank 0's too. A checkpoint of another world
// size gives every rank rank 0's state (with a warning): rank r's file there was another job's
// rank r. (Checkpoints without "world_size" predate it; their files are this job's.)
absl::StatusOr<std::string> RngBlobOfThisRank(const std::string& dir, const Json& state, RunSetup* run) {
  const std::string path = RankRngPath(dir, run->rank());
  const int64_t saved_world = state.value("world_size", int64_t{0});
  const bool other_world = saved_world > 0 && saved_world != run->world_size();
  if (other_world && run->is_main()) {
    LOG(WARNING) << dir << " was written by " << saved_world << " ranks, this run has "
                 << run->world_size() << ": every rank restores rank 0's RNG state, so dropout and "
                    "drop-path masks will not repeat what an uninterrupted run would have drawn";
  }
  if (run->rank() > 0 && !other_world && std::filesystem::exists(path)) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (!in) return absl::DataLossError(absl::StrCat("cannot read ", path));
    return bytes.str();
  }
  std::string rng_blob;
  if (!absl::Base64Unescape(state.at("rng").get<std::string>(), &rng_blob)) {
    return absl::DataLossError(dir + "/trainer_state.json: rng is not base64");
  }
  return rng_blob;
}

// What each rank keeps for itself: its ZeRO shard, its PowerSGD errors and Q's, its DiLoCo
// state (inner optimizer, error feedback, weights).
absl::Status SaveRankParts(const std::string& dir, RunSetup* run) {
  if (run->zero() != nullptr) RETURN_IF_ERROR(run->zero()->SaveShard(dir));
  if (run->powersgd() != nullptr) RETURN_IF_ERROR(run->powersgd()->SaveState(dir));
  if (run->diloco() != nullptr) RETURN_IF_ERROR(WriteDiLoCoRankFiles(dir, run));
  return absl::OkStatus();
}

// PowerSGD: this rank's errors and warm-start Q's. A checkpoint without them (written by --sync=
// ddp, or by another world size) continues with fresh PowerSGD state, counting from its step.
absl::Status LoadPowerSgdState(const std::string& dir, int64_t step, RunSetup* run) {
  distributed::PowerSgd* powersgd = run->powersgd();
  if (powersgd == nullptr) return absl::OkStatus();
  absl::Status s = powersgd->LoadState(dir);
  if (!absl::IsNotFound(s)) return s;
  LOG(WARNING) << s.message() << ": PowerSGD starts afresh at step " << step
               << " (new Q's, no error carried over)";
  powersgd->RestartAt(step);
  return absl::OkStatus();
}

// ZeRO / PowerSGD / DiLoCo: every rank writes its part (zero_rank<r>_of<W>.pt,
// powersgd_rank<r>_of<W>.pt, diloco_rank<r>_of<W>.safetensors)
// into rank 0's temp directory while rank 0's writer runs. Collectives, in the same order on
// every rank:
//   Barrier            the temp directory exists (rank 0's writer has started)
//   AnyRank(failed)    every shard is written, or some rank failed: rank 0's writer then fails,
//                      so the CheckpointManager drops the temp directory and no DONE appears
//   AnyRank(failed)    rank 0's fsync / rename / DONE went through (or the save failed anywhere)
// A failure on one rank still takes part in all three, so every rank returns an error together.
// Only a rank that dies or hangs leaves the others to the communicator's timeout (its error names
// the rank).
absl::StatusOr<std::string> SaveShardedTrainState(const LoopState& loop, bool is_best,
                                                  RunSetup* run) {
  const int64_t step = loop.step;
  distributed::Communicator* comm = run->comm();
  absl::StatusOr<std::string> saved = std::string();
  if (run->is_main()) {
    bool writer_ran = false;
    absl::Status comm_status;  // a failed collective: the communicator is unusable then
    saved = run->checkpoints().Save(
        step,
        [&](const std::string& dir) -> absl::Status {
          writer_ran = true;
          comm_status = comm->Barrier();
          if (!comm_status.ok()) return comm_status;
          absl::Status s = WriteCheckpointFiles(dir, loop, run);
          if (s.ok()) s = SaveRankParts(dir, run);
          absl::StatusOr<bool> others_failed = run->AnyRank(!s.ok());
          if (!others_failed.ok()) comm_status = others_failed.status();
          if (!comm_status.ok()) return comm_status;
          if (!s.ok()) return s;
          if (*others_failed) {
            return absl::InternalError("another rank could not write its part (see its log)");
          }
          return absl::OkStatus();
        },
        is_best, loop.best_metric);
    if (!comm_status.ok()) return comm_status;
    if (!writer_ran) {  // Save failed before its writer: still meet the other ranks
      RETURN_IF_ERROR(comm->Barrier());
      RETURN_IF_ERROR(run->AnyRank(true).status());
    }
  } else {
    RETURN_IF_ERROR(comm->Barrier());
    const std::string tmp_dir = run->checkpoints().TempDirPath(step);
    absl::Status s = SaveRankParts(tmp_dir, run);
    if (s.ok()) s = WriteRankRngState(tmp_dir, run->rank());
    ASSIGN_OR_RETURN(bool some_rank_failed, run->AnyRank(!s.ok()));
    if (!s.ok()) {
      saved = s;
    } else if (some_rank_failed) {
      saved = absl::InternalError("rank 0 or another rank could not write its part (see its log)");
    } else {
      saved = absl::StrCat(run->checkpoints().checkpoints_dir(), "/",
                           CheckpointManager::StepDirName(step));
    }
  }
  ASSIGN_OR_RETURN(bool any_failed, run->AnyRank(!saved.ok()));
  if (!saved.ok()) {
    return absl::Status(saved.status().code(), absl::StrCat("checkpoint of step ", step, " on rank ",
                                                            run->rank(), ": ", saved.status().message()));
  }
  if (any_failed) {
    return absl::InternalError(absl::StrCat("checkpoint of step ", step,
                                            ": rank 0 could not complete it (see its log)"));
  }
  return saved;
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

absl::StatusOr<std::string> SaveTrainState(const LoopState& loop, bool is_best, RunSetup* run) {
  if (run->every_rank_checkpoints()) return SaveShardedTrainState(loop, is_best, run);
  // Plain data parallel: rank 0 writes, with every rank's generators (gathered, rank_rng.h).
  std::vector<std::string> rank_rng;
  if (run->world_size() > 1) {
    ASSIGN_OR_RETURN(rank_rng, GatherRngStates(*run->comm(), run->device()));
    if (!run->is_main()) return std::string();
  }
  return run->checkpoints().Save(
      loop.step,
      [&](const std::string& dir) -> absl::Status {
        RETURN_IF_ERROR(WriteCheckpointFiles(dir, loop, run));
        for (size_t r = 1; r < rank_rng.size(); ++r) {
          RETURN_IF_ERROR(base::WriteFileAtomically(RankRngPath(dir, static_cast<int>(r)), rank_rng[r]));
        }
        return absl::OkStatus();
      },
      is_best, loop.best_metric);
}

absl::StatusOr<std::optional<LoopState>> LoadTrainState(const std::string& resume, RunSetup* run) {
  ASSIGN_OR_RETURN(std::string dir, ResolveCheckpointDir(resume, run));
  if (dir.empty()) return std::optional<LoopState>();
  ASSIGN_OR_RETURN(Json state, ReadJsonFile(dir + "/trainer_state.json"));
  if (state.value("format_version", 0) != kTrainStateFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, "/trainer_state.json: format_version ", state.value("format_version", 0),
        ", this trainer reads ", kTrainStateFormatVersion));
  }
  RETURN_IF_ERROR(CheckZeroCompatible(dir, state, run));
  try {
    ASSIGN_OR_RETURN(models::NamedTensors weights, models::ReadSafetensors(dir + "/model.safetensors"));
    RETURN_IF_ERROR(LoadModelState(weights, dir + "/model.safetensors", &run->model()));
    RETURN_IF_ERROR(LoadOptimizerState(dir, state, run));
    RETURN_IF_ERROR(LoadPowerSgdState(dir, state.at("step").get<int64_t>(), run));
    if (run->diloco() != nullptr) RETURN_IF_ERROR(LoadDiLoCoState(dir, state, run));
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
    ASSIGN_OR_RETURN(std::string rng_blob, RngBlobOfThisRank(dir, state, run));
    ASSIGN_OR_RETURN(RngState rng, DecodeRngState(rng_blob));
    RETURN_IF_ERROR(RestoreRngState(rng, {}));
    ASSIGN_OR_RETURN(data::LoaderState loader, data::LoaderState::FromJson(state.at("loader").dump()));
    // Rank 0 wrote its loader's state; the ranks consume their strided shards in lockstep, so
    // the position is every rank's and only the rank differs.
    if (loader.rank == 0 && loader.world_size == run->world_size()) loader.rank = run->rank();
    RETURN_IF_ERROR(run->train_loader().Restore(loader));
    run->set_epoch(state.at("epoch").get<int64_t>());
    run->set_trackio_run_id(state.value("trackio_run_id", ""));
    LoopState loop;
    loop.step = state.at("step").get<int64_t>();
    // best_metric is a number, or a string for a non-finite value (JsonNumberOrString): no
    // evaluation has given a real one yet, so 0 (every real top-1 beats it).
    const Json& best = state.at("best_metric");
    loop.best_metric = best.is_number() ? best.get<double>() : 0.0;
    loop.train_seconds = state.value("train_seconds", 0.0);
    if (state.contains("time_budget")) {
      absl::StatusOr<BudgetPlan> plan = BudgetPlanFromJson(state.at("time_budget"));
      if (!plan.ok()) {
        return absl::DataLossError(absl::StrCat(dir, "/trainer_state.json: ", plan.status().message()));
      }
      loop.budget_plan = *plan;
    }
    return std::optional<LoopState>(loop);
  } catch (const Json::exception& e) {
    return absl::DataLossError(absl::StrCat(dir, "/trainer_state.json: ", e.what()));
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat(dir, ": ", e.what_without_backtrace()));
  }
}

}  // namespace cf::train
