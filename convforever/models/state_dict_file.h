// Reads a state dict from the files people have: a safetensors file (timm, transformers,
// torchvision or ours), a PyTorch `torch.save` file (.pth/.pt/.bin, zip format) holding a dict of
// tensors or a dict with the state dict under "state_dict" or "model" (as timm's and
// torchvision's training scripts save them), or a directory holding `model.safetensors` (our
// checkpoints `checkpoints/step-N/`, hub snapshots, timm/transformers model folders).
//
// Names come back as in the file, except a "module." prefix on every name (DistributedDataParallel
// saves) is dropped. Tensors are CPU, contiguous. Errors name the file. Thread-safe.
#ifndef CONVFOREVER_MODELS_STATE_DICT_FILE_H_
#define CONVFOREVER_MODELS_STATE_DICT_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "convforever/models/safetensors.h"

namespace cf::models {

struct StateDictFile {
  std::string path;  // the file actually read (`dir`/model.safetensors for a directory)
  NamedTensors tensors;
};

absl::StatusOr<StateDictFile> ReadStateDictFile(const std::string& path);

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_STATE_DICT_FILE_H_
