// Starting a model from weights people have (fine-tuning): a timm, transformers or torchvision
// state dict (safetensors or torch.save; see state_dict_file.h) or one of our checkpoint
// directories, mapped onto the model by name.
//
// Every tensor must match the model (name and shape; the layout is detected from the names),
// except the classifier head (ConvNeXt `head.fc`, ResNet `fc`, ViT `head`, basic CNN `fc2`): when
// the file's head has another class count it is left out and the model's freshly initialised head
// is kept (InitFromResult says so). A missing, unexpected or mis-shaped tensor is an
// InvalidArgument naming the file and the first such keys with both shapes. Not thread-safe with
// concurrent use of `model`.
#ifndef CONVFOREVER_MODELS_INIT_FROM_H_
#define CONVFOREVER_MODELS_INIT_FROM_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "convforever/models/model.h"
#include "convforever/models/name_map.h"

namespace cf::models {

struct InitFromResult {
  std::string file;                 // the file read
  WeightFormat format = WeightFormat::kTimm;
  int64_t tensors = 0;              // tensors copied into the model
  bool head_reinitialized = false;
  std::string head;                 // the head's module name in the file's layout ("fc", "classifier")
  int64_t file_classes = 0;         // the file head's class count (when re-initialised)
  int64_t model_classes = 0;
};

absl::StatusOr<InitFromResult> InitFromPretrained(Model& model, const std::string& path);

// One line for the log: what was loaded, and the re-initialised head if any.
std::string Describe(const InitFromResult& result);

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_INIT_FROM_H_
