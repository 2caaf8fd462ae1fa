#include "convforever/train/diloco_state.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/models/safetensors.h"
#include "convforever/train/run_setup.h"
#include "convforever/train/train_state.h"
#include "glog/logging.h"

namespace cf::train {
namespace {

using Json = nlohmann::json;
constexpr char kModelPrefix[] = "model/";
constexpr char kOptimizerPrefix[] = "optimizer/";

std::string RankFile(const std::string& dir, int rank, int world_size) {
  return absl::StrCat(dir, "/diloco_rank", rank, "_of", world_size, ".safetensors");
}
std::string OuterFile(const std::string& dir) { return dir + "/diloco_outer.safetensors"; }

// The tensors named "<prefix>..." with the prefix removed.
models::NamedTensors WithPrefix(const models::NamedTensors& all, const std::string& prefix) {
  models::NamedTensors out;
  for (const auto& [name, t] : all) {
    if (absl::StartsWith(name, prefix)) out.emplace_back(name.substr(prefix.size()), t);
  }
  return out;
}

absl::Status CheckCompatible(const std::string& dir, const Json& saved, RunSetup* run) {
  const TrainerOptions& o = run->options();
  const int world = saved.value("world_size", 0);
  const int fragments = saved.value("fragments", 0);
  const std::string dtype = saved.value("dtype", "");
  if (world != run->world_size() || fragments != o.diloco_fragments || dtype != o.diloco_dtype) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, " holds DiLoCo state of ", world, " ranks, ", fragments, " fragment(s), dtype ", dtype,
        "; this run has ", run->world_size(), " ranks, --diloco_fragments=", o.diloco_fragments,
        ", --diloco_dtype=", o.diloco_dtype, ": resume with the checkpoint's (tools/cf launch -n ",
        world, " -- ...)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<distributed::DiLoCo>> CreateDiLoCo(const TrainerOptions& o,
                                                                  distributed::Communicator* comm,
                                                                  models::Model& model) {
  distributed::DiLoCoOptions d;
  d.inner_steps = o.diloco_inner_steps;
  d.outer_lr = o.diloco_outer_lr;
  d.outer_momentum = o.diloco_outer_momentum;
  d.outer_nesterov = o.diloco_outer_nesterov;
  ASSIGN_OR_RETURN(d.dtype, distributed::ParseWireDtype(o.diloco_dtype));
  d.int8_chunk = o.diloco_int8_chunk;
  d.fragments = o.diloco_fragments;
  d.overlap = o.diloco_overlap;
  ASSIGN_OR_RETURN(std::unique_ptr<distributed::DiLoCo> diloco,
                   distributed::DiLoCo::Create(comm, model.named_parameters(/*recurse=*/true).pairs(), d));
  int64_t bytes = 0;
  for (int f = 0; f < diloco->num_fragments(); ++f) bytes += diloco->WireBytes(f);
  LOG(INFO) << "DiLoCo: outer step every " << d.inner_steps << " inner steps (lr " << d.outer_lr
            << ", momentum " << d.outer_momentum << (d.outer_nesterov ? " Nesterov" : "") << "), "
            << d.fragments << " fragment(s)" << (d.overlap ? " overlapped" : "") << ", "
            << o.diloco_dtype << " pseudo-gradients: " << bytes << " bytes sent per rank per "
            << d.inner_steps << " steps";
  return diloco;
}

Json DiLoCoCheckpointJson(RunSetup* run) {
  const TrainerOptions& o = run->options();
  return {{"world_size", run->world_size()},
          {"inner_steps", o.diloco_inner_steps},
          {"fragments", o.diloco_fragments},
          {"dtype", o.diloco_dtype}};
}

absl::Status WriteDiLoCoRankFiles(const std::string& dir, RunSetup* run) {
  distributed::DiLoCo* diloco = run->diloco();
  RETURN_IF_ERROR(diloco->FinishCommunication());
  models::NamedTensors tensors = diloco->RankState();
  std::map<std::string, std::string> meta = {{"format", "pt"}};
  if (!run->is_main()) {
    for (auto& [name, t] : run->model().StateDict()) tensors.emplace_back(kModelPrefix + name, t);
    models::NamedTensors optimizer_tensors;
    Json optimizer_meta;
    RETURN_IF_ERROR(run->optimizer().SaveState(&optimizer_tensors, &optimizer_meta));
    for (auto& [name, t] : optimizer_tensors) tensors.emplace_back(kOptimizerPrefix + name, t);
    meta["optimizer"] = optimizer_meta.dump();
  }
  RETURN_IF_ERROR(models::WriteSafetensors(RankFile(dir, run->rank(), run->world_size()), tensors, meta));
  if (!run->is_main()) return absl::OkStatus();
  distributed::DiLoCo::Metadata outer_meta = {{"format", "pt"}};
  models::NamedTensors outer = diloco->OuterState(&outer_meta);
  return models::WriteSafetensors(OuterFile(dir), outer, outer_meta);
}

absl::Status LoadDiLoCoState(const std::string& dir, const Json& state, RunSetup* run) {
  distributed::DiLoCo* diloco = run->diloco();
  if (!state.contains("diloco")) {
    diloco->RestartFromCurrentWeights();
    LOG(INFO) << dir << " has no DiLoCo state: the outer steps start from its weights";
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(CheckCompatible(dir, state.at("diloco"), run));
  ASSIGN_OR_RETURN(models::SafetensorsFile outer, models::ReadSafetensorsFile(OuterFile(dir)));
  RETURN_IF_ERROR(diloco->LoadOuterState(outer.tensors, outer.metadata, OuterFile(dir)));
  const std::string path = RankFile(dir, run->rank(), run->world_size());
  ASSIGN_OR_RETURN(models::SafetensorsFile mine, models::ReadSafetensorsFile(path));
  RETURN_IF_ERROR(diloco->LoadRankState(mine.tensors, path));
  if (run->is_main()) return absl::OkStatus();  // rank 0's weights and optimizer: the usual files
  RETURN_IF_ERROR(LoadModelState(WithPrefix(mine.tensors, kModelPrefix), path, &run->model()));
  auto it = mine.metadata.find("optimizer");
  Json optimizer_meta = it == mine.metadata.end() ? Json() : Json::parse(it->second, nullptr, false);
  if (optimizer_meta.is_discarded() || optimizer_meta.is_null()) {
    return absl::DataLossError(path + ": no valid \"optimizer\" metadata");
  }
  absl::Status s = run->optimizer().LoadState(WithPrefix(mine.tensors, kOptimizerPrefix), optimizer_meta);
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  return absl::OkStatus();
}

}  // namespace cf::train
