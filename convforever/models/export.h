// Checkpoint export and import: a model's weights as `model.safetensors` + `config.json` in the
// layout timm (`timm.create_model("hf-hub:...")` / `pretrained_cfg_overlay=dict(file=...)`) or
// transformers (`ConvNextForImageClassification.from_pretrained(dir)`) loads, and strict loading
// of such files (or torchvision-named ones) back into our models.
//
// Loading is strict: every parameter and buffer of the model must be in the file under the
// format's name with the same shape, and the file may hold nothing else; errors list the missing,
// unexpected and mis-shaped names (first few, with counts) and name the file. Floating tensors of
// another float dtype (F16/BF16/F64) are converted. Not thread-safe with concurrent use of `model`.
#ifndef CONVFOREVER_MODELS_EXPORT_H_
#define CONVFOREVER_MODELS_EXPORT_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convforever/models/model.h"
#include "convforever/models/name_map.h"
#include "convforever/models/safetensors.h"

namespace cf::models {

// The model's state dict under `format`'s names (CPU copies, contiguous, detached).
absl::StatusOr<NamedTensors> ExportStateDict(const Model& model, WeightFormat format);

// The config.json text for `format` (timm: architecture, num_classes, num_features, model_args,
// pretrained_cfg, label_names; transformers: ConvNextConfig with id2label/label2id). `class_names`
// may be empty (labels become LABEL_i) or must have num_classes entries.
absl::StatusOr<std::string> ConfigJson(const Model& model, WeightFormat format,
                                       const std::vector<std::string>& class_names,
                                       int64_t image_size = 224);

// Writes `dir`/model.safetensors and `dir`/config.json (each atomically; creates `dir`).
// Unimplemented for a family `format` does not cover (transformers: ConvNeXt only).
absl::Status SaveModel(const Model& model, const std::string& dir, WeightFormat format,
                       const std::vector<std::string>& class_names, int64_t image_size = 224);

// Loads weights from a safetensors file, or from `path`/model.safetensors when `path` is a
// directory. The name layout (timm, transformers, torchvision) is detected from the file.
absl::Status LoadModelWeights(Model& model, const std::string& path);

// The same from tensors in memory, in the given layout; `source` names them in errors. Model
// tensors named (timm names) in `keep` are left as they are and must not be in `tensors`.
absl::Status LoadStateDict(Model& model, const NamedTensors& tensors, WeightFormat format,
                           const std::string& source, const std::set<std::string>& keep = {});

// The layout under which most of the model's state-dict names are present in `tensors`.
WeightFormat DetectWeightFormat(const Model& model, const NamedTensors& tensors);

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_EXPORT_H_
