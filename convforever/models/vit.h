// Vision Transformer (Dosovitskiy et al. 2021, arXiv 2010.11929), pre-norm, class token, learned
// position embeddings; ViT-Tiny widths (dim 192, depth 12, heads 3, MLP 768) with 4x4 patches for
// 32x32 inputs (64 patches + 1 class token). Names are timm's (`patch_embed.proj`, `cls_token`,
// `pos_embed`, `blocks.3.attn.qkv`, `blocks.3.mlp.fc1`, `norm`, `head`); LayerNorm eps 1e-6.
// Input `[B, C, S, S]` with S = the image_size it was built for -> logits `[B, num_classes]`.
#ifndef CONVFOREVER_MODELS_VIT_H_
#define CONVFOREVER_MODELS_VIT_H_

#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "convforever/models/layers.h"
#include "convforever/models/model.h"

namespace cf::models {

struct ViTOptions {
  TORCH_ARG(int64_t, image_size) = 32;
  TORCH_ARG(int64_t, patch_size) = 4;
  TORCH_ARG(int64_t, in_chans) = 3;
  TORCH_ARG(int64_t, num_classes) = 100;
  TORCH_ARG(int64_t, dim) = 192;
  TORCH_ARG(int64_t, depth) = 12;
  TORCH_ARG(int64_t, heads) = 3;
  TORCH_ARG(int64_t, mlp_dim) = 768;
  TORCH_ARG(double, drop_path_rate) = 0.0;
};

class ViTAttentionImpl : public torch::nn::Module {
 public:
  ViTAttentionImpl(int64_t dim, int64_t heads);
  at::Tensor forward(const at::Tensor& x);  // [B, N, D] -> [B, N, D]
  torch::nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(ViTAttention);

class ViTMlpImpl : public torch::nn::Module {
 public:
  ViTMlpImpl(int64_t dim, int64_t hidden);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ViTMlp);

class ViTBlockImpl : public torch::nn::Module {
 public:
  ViTBlockImpl(const ViTOptions& o, double drop_path);
  at::Tensor forward(const at::Tensor& x);  // [B, N, D] -> [B, N, D]
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  ViTAttention attn{nullptr};
  ViTMlp mlp{nullptr};

 private:
  double drop_path_;
};
TORCH_MODULE(ViTBlock);

// timm's PatchEmbed: a conv with kernel = stride = patch size, under `patch_embed.proj`.
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t in_chans, int64_t dim, int64_t patch);
  at::Tensor forward(const at::Tensor& x);  // [B, C, H, W] -> [B, N, D]
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

class ViT : public Model {
 public:
  explicit ViT(const ViTOptions& options);
  at::Tensor forward(at::Tensor x) override;
  std::string family() const override { return "vit"; }
  double ForwardMacs(int64_t image_size) const override;
  const ViTOptions& options() const { return options_; }

  PatchEmbed patch_embed{nullptr};
  at::Tensor cls_token, pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};

 private:
  ViTOptions options_;
  std::vector<ViTBlock> block_list_;
};

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_VIT_H_
