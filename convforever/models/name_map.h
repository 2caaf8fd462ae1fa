// Parameter-name maps between our (timm) state-dict names and the other ecosystems' layouts:
//   * transformers `ConvNextForImageClassification` (ConvNeXt only),
//   * torchvision (`features.*` / `classifier.*` for ConvNeXt; identical names for ResNet),
// used by export.h and the golden tests. Pure string functions; thread-safe.
//
// Shapes agree except torchvision's ConvNeXt layer scale, `[C, 1, 1]` where timm has `[C]`
// (same values in the same order: reshape).
#ifndef CONVFOREVER_MODELS_NAME_MAP_H_
#define CONVFOREVER_MODELS_NAME_MAP_H_

#include <string>

#include "absl/status/statusor.h"

namespace cf::models {

enum class WeightFormat { kTimm, kTransformers, kTorchvision };

const char* WeightFormatName(WeightFormat format);
absl::StatusOr<WeightFormat> ParseWeightFormat(const std::string& name);  // timm|transformers|torchvision

// Maps a timm name of a model of `family` ("convnext", "resnet", "simple_cnn", "vit") to `format`.
// Unimplemented for a family the format does not cover (e.g. a ViT in transformers' ConvNeXt
// layout); InvalidArgument for a name the family does not have.
absl::StatusOr<std::string> MapName(const std::string& family, const std::string& timm_name,
                                    WeightFormat format);

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_NAME_MAP_H_
