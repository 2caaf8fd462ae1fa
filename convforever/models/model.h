// The model interface every network in the registry implements, and the options that build one.
//
// A Model maps images `[B, C, H, W]` (float, any memory format) to logits `[B, num_classes]`.
// Its parameters and buffers are registered under timm's names, so `named_parameters()` /
// `named_buffers()` are a timm state dict and checkpoints map one to one (see export.h).
// Models are not thread-safe: one forward/backward at a time per instance, as in PyTorch.
#ifndef CONVFOREVER_MODELS_MODEL_H_
#define CONVFOREVER_MODELS_MODEL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

namespace cf::models {

// Options common to every registry entry. Fields a model has no use for are ignored (e.g. `depth`
// outside the "convforever" family).
struct ModelOptions {
  int64_t num_classes = 1000;
  int64_t in_channels = 3;
  int64_t image_size = 224;          // informs small-image stems; ViT patch grid
  double drop_path_rate = 0.0;       // stochastic depth, rising linearly over the blocks
  double layer_scale_init = 1e-6;    // ConvNeXt gamma init (<= 0 disables layer scale)
  bool gradient_checkpointing = false;
  int depth = 0;                     // "convforever" family: total block count (>= 4)
  std::vector<int64_t> widths;       // optional override of stage widths
  double width_multiplier = 1.0;
  int stem_stride = 0;               // 0 = model default (4 for ConvNeXt), 2 or 1 for small images
  bool blur_pool = false;            // ResNet: anti-aliased downsampling (Zhang 2019)
  bool conv_head = false;            // ResNet: 1x1 conv classifier instead of the last FC
};

class Model : public torch::nn::Module {
 public:
  explicit Model(const std::string& name) : torch::nn::Module(name) {}
  // [B, C, H, W] float -> logits [B, num_classes].
  virtual at::Tensor forward(at::Tensor x) = 0;
  // "convnext", "resnet", "simple_cnn" or "vit": the family, for name maps and config.json.
  virtual std::string family() const = 0;
  // Analytic multiply-accumulates of one forward pass of one `image_size` x `image_size` image
  // (convolutions, linear layers, attention matmuls; norms and activations are not counted,
  // as in fvcore/timm's GMACs).
  virtual double ForwardMacs(int64_t image_size) const = 0;
  // Recompute each stage in backward instead of storing its activations (see checkpoint.h).
  virtual void SetGradientCheckpointing(bool enabled) { checkpointing_ = enabled; }
  bool gradient_checkpointing() const { return checkpointing_; }
  int64_t num_classes() const { return num_classes_; }
  // The registry name it was built under ("convnext_tiny", "convforever", ...); set by CreateModel.
  const std::string& registry_name() const { return registry_name_; }
  void set_registry_name(const std::string& name) { registry_name_ = name; }

  // Parameters then buffers under timm's names (the state dict), in registration order.
  std::vector<std::pair<std::string, at::Tensor>> StateDict() const;

 protected:
  bool checkpointing_ = false;
  int64_t num_classes_ = 0;
  std::string registry_name_;
};

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_MODEL_H_
