#include "convforever/models/init_from.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/models/export.h"
#include "convforever/models/state_dict_file.h"

namespace cf::models {
namespace {

// The classifier's module under our (timm) names.
std::string HeadModule(const std::string& family) {
  if (family == "convnext") return "head.fc";
  if (family == "resnet") return "fc";
  if (family == "vit") return "head";
  return "fc2";  // simple_cnn
}

const at::Tensor* Find(const NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors) {
    if (n == name) return &t;
  }
  return nullptr;
}

// Drops the file's head when its class count differs from the model's; fills `result` and
// returns the model names to keep as initialised.
absl::StatusOr<std::set<std::string>> SplitOffHead(const Model& model, NamedTensors& tensors,
                                                   InitFromResult& result) {
  const std::string head = HeadModule(model.family());
  ASSIGN_OR_RETURN(std::string weight, MapName(model.family(), head + ".weight", result.format));
  ASSIGN_OR_RETURN(std::string bias, MapName(model.family(), head + ".bias", result.format));
  const at::Tensor* w = Find(tensors, weight);
  result.model_classes = model.num_classes();
  if (w == nullptr || w->dim() == 0 || w->size(0) == model.num_classes()) return std::set<std::string>{};
  result.head_reinitialized = true;
  result.head = weight.substr(0, weight.size() - 7);  // without ".weight"
  result.file_classes = w->size(0);
  NamedTensors rest;
  for (auto& [n, t] : tensors) {
    if (n != weight && n != bias) rest.emplace_back(n, t);
  }
  tensors = std::move(rest);
  return std::set<std::string>{head + ".weight", head + ".bias"};
}

}  // namespace

absl::StatusOr<InitFromResult> InitFromPretrained(Model& model, const std::string& path) {
  ASSIGN_OR_RETURN(StateDictFile file, ReadStateDictFile(path));
  InitFromResult result;
  result.file = file.path;
  result.format = DetectWeightFormat(model, file.tensors);
  ASSIGN_OR_RETURN(std::set<std::string> keep, SplitOffHead(model, file.tensors, result));
  result.tensors = static_cast<int64_t>(file.tensors.size());
  try {
    RETURN_IF_ERROR(LoadStateDict(model, file.tensors, result.format, file.path, keep));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file.path, ": cannot load: ", e.what()));
  }
  return result;
}

std::string Describe(const InitFromResult& r) {
  std::string line = absl::StrCat("init_from: ", r.tensors, " tensors from ", r.file, " (",
                                  WeightFormatName(r.format), " names)");
  if (r.head_reinitialized) {
    absl::StrAppend(&line, "; classifier head '", r.head, "' re-initialised: the file has ",
                    r.file_classes, " classes, the model ", r.model_classes);
  }
  return line;
}

}  // namespace cf::models
