#include "convforever/models/state_dict_file.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/models/torch_pickle.h"

namespace cf::models {
namespace {

namespace fs = std::filesystem;

void DropModulePrefix(NamedTensors& tensors) {
  if (tensors.empty()) return;
  for (const auto& [name, t] : tensors) {
    if (!absl::StartsWith(name, "module.")) return;
  }
  for (auto& [name, t] : tensors) name = name.substr(7);
}

}  // namespace

absl::StatusOr<StateDictFile> ReadStateDictFile(const std::string& path) {
  StateDictFile f;
  f.path = fs::is_directory(path) ? path + "/model.safetensors" : path;
  if (!fs::exists(f.path)) return absl::NotFoundError(absl::StrCat("no weights file ", f.path));
  std::ifstream in(f.path, std::ios::binary);
  char magic[2] = {0, 0};
  in.read(magic, 2);
  // torch.save writes a zip archive ("PK"); anything else is tried as safetensors.
  if (magic[0] == 'P' && magic[1] == 'K') {
    ASSIGN_OR_RETURN(f.tensors, ReadTorchSaveStateDict(f.path));
  } else {
    ASSIGN_OR_RETURN(f.tensors, ReadSafetensors(f.path));
  }
  DropModulePrefix(f.tensors);
  return f;
}

}  // namespace cf::models
