// ConvNeXt (Liu et al. 2022, "A ConvNet for the 2020s", arXiv 2201.03545) at any depth and width.
//
// stem: conv k=s stride s (s = 4 by default; 2 or 1 for 28x28/32x32 images) + LayerNorm2d;
// stage i: [LayerNorm2d + conv 2x2 stride 2 for i > 0] + depths[i] blocks of
//   dwconv 7x7 -> LayerNorm(eps 1e-6) -> Linear C->4C -> GELU -> Linear 4C->C -> gamma -> drop path
//   -> + residual;
// head: global average pool -> LayerNorm -> Linear. Drop path rises linearly from 0 over all
// blocks; weights truncated normal (std 0.02), zero biases. Any number of stages >= 1.
// Names are timm's (`stem.0`, `stages.1.downsample.1`, `stages.2.blocks.4.mlp.fc1`, `head.fc`).
// Input `[B, in_chans, H, W]` float (contiguous or channels_last) -> logits `[B, num_classes]`.
#ifndef CONVFOREVER_MODELS_CONVNEXT_H_
#define CONVFOREVER_MODELS_CONVNEXT_H_

#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "convforever/models/layers.h"
#include "convforever/models/model.h"

namespace cf::models {

struct ConvNeXtOptions {
  ConvNeXtOptions(std::vector<int64_t> depths, std::vector<int64_t> dims)
      : depths_(std::move(depths)), dims_(std::move(dims)) {}
  TORCH_ARG(std::vector<int64_t>, depths);
  TORCH_ARG(std::vector<int64_t>, dims);
  TORCH_ARG(int64_t, in_chans) = 3;
  TORCH_ARG(int64_t, num_classes) = 1000;
  TORCH_ARG(int64_t, stem_stride) = 4;
  TORCH_ARG(double, drop_path_rate) = 0.0;
  TORCH_ARG(double, layer_scale_init) = 1e-6;
};

// The MLP of a block, as timm's `Mlp` (`fc1`, `fc2`).
class ConvNeXtMlpImpl : public torch::nn::Module {
 public:
  explicit ConvNeXtMlpImpl(int64_t dim);
  at::Tensor forward(const at::Tensor& x);  // [..., C] -> [..., C]
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ConvNeXtMlp);

class ConvNeXtBlockImpl : public torch::nn::Module {
 public:
  ConvNeXtBlockImpl(int64_t dim, double drop_path, double layer_scale_init);
  at::Tensor forward(const at::Tensor& x);  // [B, C, H, W] -> same
  torch::nn::Conv2d conv_dw{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  ConvNeXtMlp mlp{nullptr};
  at::Tensor gamma;  // [C], undefined when layer scale is off

 private:
  double drop_path_;
};
TORCH_MODULE(ConvNeXtBlock);

class ConvNeXtStageImpl : public torch::nn::Module {
 public:
  ConvNeXtStageImpl(int64_t in_dim, int64_t dim, int64_t depth, bool downsample,
                    const std::vector<double>& drop_paths, double layer_scale_init);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Sequential downsample{nullptr};  // null for the first stage (timm: Identity)
  torch::nn::ModuleList blocks{nullptr};

 private:
  std::vector<ConvNeXtBlock> block_list_;
};
TORCH_MODULE(ConvNeXtStage);

// timm's NormMlpClassifierHead without the hidden layer: `head.norm`, `head.fc`.
class ConvNeXtHeadImpl : public torch::nn::Module {
 public:
  ConvNeXtHeadImpl(int64_t dim, int64_t num_classes);
  at::Tensor forward(const at::Tensor& x);  // [B, C, H, W] -> [B, num_classes]
  LayerNorm2d norm{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ConvNeXtHead);

class ConvNeXt : public Model {
 public:
  explicit ConvNeXt(const ConvNeXtOptions& options);
  at::Tensor forward(at::Tensor x) override;
  std::string family() const override { return "convnext"; }
  double ForwardMacs(int64_t image_size) const override;
  const ConvNeXtOptions& options() const { return options_; }

  torch::nn::Sequential stem{nullptr};
  torch::nn::ModuleList stages{nullptr};
  ConvNeXtHead head{nullptr};

 private:
  void InitWeights();
  ConvNeXtOptions options_;
  std::vector<ConvNeXtStage> stage_list_;
};

// Analytic parameter count and forward multiply-accumulates of a ConvNeXt (no construction, so
// usable for arbitrarily deep configurations).
int64_t ConvNeXtParameterCount(const ConvNeXtOptions& options);
double ConvNeXtMacs(const ConvNeXtOptions& options, int64_t image_size);

// Splits `total` blocks over `stages` stages: total/stages each, the remainder going to the
// first stages (30 over 4 -> 8,8,7,7).
std::vector<int64_t> SplitDepth(int64_t total, int64_t stages);

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_CONVNEXT_H_
