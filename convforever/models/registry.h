// The model registry: every network by name, with its parameter count and analytic forward cost.
//
// Names: convnext_{tiny,small,base,large,xlarge} (paper depths/widths), convforever (ConvNeXt with
// `ModelOptions.depth` blocks split over 4 stages), convnext_nano_fmnist / convnext_pico_fmnist
// (small ConvNeXts for 28x28x1 CPU training: stem 2x2/2 -> 14x14, stages 14/7/3 at widths
// 32/64/128 with 2 or 1 blocks each), resnet{18,34,50}, simple_cnn, vit_tiny_32.
// Thread-safe: the registry is immutable; each CreateModel returns a fresh model.
#ifndef CONVFOREVER_MODELS_REGISTRY_H_
#define CONVFOREVER_MODELS_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/models/model.h"

namespace cf::models {

struct ModelInfo {
  std::string name;
  std::string description;
  int64_t params = 0;         // with the entry's default options (DefaultOptions)
  int64_t native_size = 224;  // the image size the entry is meant for
  double gmacs_native = 0;    // forward GMACs of one image at native_size
  double gmacs_224 = 0;       // forward GMACs of one image at 224 (0 where 224 makes no sense)
};

// Builds a fresh model in training mode on the CPU with its default initialization. Errors
// (InvalidArgument / NotFound) name the bad option or the unknown model and list known names.
absl::StatusOr<std::shared_ptr<Model>> CreateModel(const std::string& name,
                                                   const ModelOptions& options);

// The options an entry is meant for (classes, channels and image size of its usual dataset:
// ImageNet for ConvNeXt/ResNet, Fashion-MNIST for simple_cnn and convnext_nano_fmnist, CIFAR-100
// for vit_tiny_32; convforever gets depth 12).
ModelOptions DefaultOptions(const std::string& name);

std::vector<std::string> ModelNames();
std::vector<ModelInfo> ListModels();

// Total elements of all parameters (buffers excluded).
int64_t CountParameters(const torch::nn::Module& module);

// Analytic forward multiply-accumulates (MACs, what timm/fvcore call "FLOPs") of one image of
// `image_size` x `image_size`; multiply by 2 for arithmetic FLOPs, by ~3 for forward+backward.
// Does not build the model when the family has a closed form (ConvNeXt at any depth).
absl::StatusOr<double> ForwardFlops(const std::string& name, const ModelOptions& options,
                                    int64_t image_size);

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_REGISTRY_H_
