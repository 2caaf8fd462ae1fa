// Reads the tensors of a PyTorch `torch.save` file (the zip format of PyTorch >= 1.6): the pickle
// in `<archive>/data.pkl` with its tensor storages in `<archive>/data/<key>`.
//
// LibTorch's own torch::pickle_load refuses `collections.OrderedDict`, which is what
// `torch.save(model.state_dict())` writes, so this is a small pickle machine (protocol 2, the
// opcodes torch.save emits; see Python's Lib/pickletools.py for their definitions) that knows
// dicts, lists, tuples, strings, numbers, OrderedDict, tensors (`torch._utils._rebuild_tensor_v2`,
// `_rebuild_parameter`) and keeps any other object (argparse.Namespace, optimizer state, ...) as
// an opaque value, so training checkpoints with extra entries load too. Thread-safe.
#ifndef CONVFOREVER_MODELS_TORCH_PICKLE_H_
#define CONVFOREVER_MODELS_TORCH_PICKLE_H_

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "convforever/models/safetensors.h"

namespace cf::models {

// The state dict in a torch.save file: the saved dict of tensors itself, or the dict of tensors
// under its "state_dict" or "model" key. Errors name the file (and the key that is not a tensor).
absl::StatusOr<NamedTensors> ReadTorchSaveStateDict(const std::string& path);

// The bytes of storage `key` (the archive's record "data/<key>"); the view must stay valid until
// ParseTorchPickleStateDict returns.
using TorchStorageReader = std::function<absl::StatusOr<std::string_view>(const std::string& key)>;

// What ReadTorchSaveStateDict does once the archive is open: runs `pickle` (data.pkl) and returns
// its state dict; `source` names the input in errors. Untrusted input is safe: every length and
// index is checked against the bytes there are, tensor views must lie inside their storage and
// hold no more elements than it, and the tensors built from a file never take more than twice
// the bytes of the storages they come from.
absl::StatusOr<NamedTensors> ParseTorchPickleStateDict(std::string_view pickle,
                                                       const TorchStorageReader& read_storage,
                                                       const std::string& source);

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_TORCH_PICKLE_H_
