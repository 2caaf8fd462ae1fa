// ResNet v1.5 (He et al. 2016, arXiv 1512.03385; stride on the 3x3 conv of the bottleneck, as
// torchvision and timm): resnet18/34 (BasicBlock) and resnet50 (Bottleneck).
//
// Options beyond the paper: stochastic depth on each residual branch (Huang et al. 2016), BlurPool
// anti-aliased downsampling (Zhang 2019, arXiv 1904.11486: strided convs and the stem max-pool run
// at stride 1 followed by a fixed [1 2 1]^2 blur with stride 2), a 1x1-conv classifier instead of
// the last FC (`fc.weight` [N, C, 1, 1]), and small-image stems (stem_stride 2: conv 3x3/2, no
// max-pool; 1: conv 3x3/1, no max-pool). Names are torchvision's = timm's (`conv1`, `bn1`,
// `layer3.2.conv2`, `layer1.0.downsample.0`, `fc`). Input `[B, C, H, W]` -> `[B, num_classes]`.
#ifndef CONVFOREVER_MODELS_RESNET_H_
#define CONVFOREVER_MODELS_RESNET_H_

#include <vector>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "convforever/models/layers.h"
#include "convforever/models/model.h"

namespace cf::models {

struct ResNetOptions {
  explicit ResNetOptions(std::vector<int64_t> layers, bool bottleneck)
      : layers_(std::move(layers)), bottleneck_(bottleneck) {}
  TORCH_ARG(std::vector<int64_t>, layers);  // blocks per stage, e.g. {3, 4, 6, 3}
  TORCH_ARG(bool, bottleneck);
  TORCH_ARG(std::vector<int64_t>, widths) = std::vector<int64_t>{64, 128, 256, 512};
  TORCH_ARG(int64_t, in_chans) = 3;
  TORCH_ARG(int64_t, num_classes) = 1000;
  TORCH_ARG(int64_t, stem_stride) = 4;
  TORCH_ARG(double, drop_path_rate) = 0.0;
  TORCH_ARG(bool, blur_pool) = false;
  TORCH_ARG(bool, conv_head) = false;
};

// Fixed binomial low-pass then subsample by 2 (reflect padding), per channel.
at::Tensor BlurPool(const at::Tensor& x);

// BasicBlock (two 3x3) or Bottleneck (1x1 -> 3x3 -> 1x1, expansion 4).
class ResNetBlockImpl : public torch::nn::Module {
 public:
  ResNetBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, bool bottleneck,
                  bool blur_pool, double drop_path);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};

 private:
  bool bottleneck_, blur_;
  double drop_path_;
};
TORCH_MODULE(ResNetBlock);

class ResNet : public Model {
 public:
  explicit ResNet(const ResNetOptions& options);
  at::Tensor forward(at::Tensor x) override;
  std::string family() const override { return "resnet"; }
  double ForwardMacs(int64_t image_size) const override;
  const ResNetOptions& options() const { return options_; }

  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Module* fc_module = nullptr;  // Linear, or Conv2d 1x1 with conv_head

 private:
  ResNetOptions options_;
  std::vector<std::vector<ResNetBlock>> layers_;
  std::vector<torch::nn::ModuleList> layer_modules_;
  torch::nn::Linear fc_linear_{nullptr};
  torch::nn::Conv2d fc_conv_{nullptr};
};

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_RESNET_H_
