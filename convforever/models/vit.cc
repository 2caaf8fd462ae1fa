#include "convforever/models/vit.h"

#include <cmath>

namespace cf::models {

namespace nn = torch::nn;

ViTAttentionImpl::ViTAttentionImpl(int64_t dim, int64_t heads) : heads_(heads) {
  TORCH_CHECK(dim % heads == 0, "ViT: dim ", dim, " is not divisible by heads ", heads);
  qkv = register_module("qkv", nn::Linear(dim, 3 * dim));
  proj = register_module("proj", nn::Linear(dim, dim));
}

at::Tensor ViTAttentionImpl::forward(const at::Tensor& x) {
  const int64_t b = x.size(0), n = x.size(1), d = x.size(2), hd = d / heads_;
  // [B, N, 3D] -> [3, B, heads, N, head_dim]
  at::Tensor qkv_out = qkv->forward(x).reshape({b, n, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
  at::Tensor q = qkv_out[0], k = qkv_out[1], v = qkv_out[2];
  at::Tensor attn = at::softmax(at::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(hd))), -1);
  at::Tensor out = at::matmul(attn, v).transpose(1, 2).reshape({b, n, d});
  return proj->forward(out);
}

ViTMlpImpl::ViTMlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", nn::Linear(dim, hidden));
  fc2 = register_module("fc2", nn::Linear(hidden, dim));
}

at::Tensor ViTMlpImpl::forward(const at::Tensor& x) { return fc2->forward(at::gelu(fc1->forward(x))); }

ViTBlockImpl::ViTBlockImpl(const ViTOptions& o, double drop_path) : drop_path_(drop_path) {
  norm1 = register_module("norm1", nn::LayerNorm(nn::LayerNormOptions({o.dim()}).eps(1e-6)));
  attn = register_module("attn", ViTAttention(o.dim(), o.heads()));
  norm2 = register_module("norm2", nn::LayerNorm(nn::LayerNormOptions({o.dim()}).eps(1e-6)));
  mlp = register_module("mlp", ViTMlp(o.dim(), o.mlp_dim()));
}

at::Tensor ViTBlockImpl::forward(const at::Tensor& x) {
  at::Tensor y = x + DropPath(attn->forward(norm1->forward(x)), drop_path_, is_training());
  return y + DropPath(mlp->forward(norm2->forward(y)), drop_path_, is_training());
}

PatchEmbedImpl::PatchEmbedImpl(int64_t in_chans, int64_t dim, int64_t patch) {
  proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(in_chans, dim, patch).stride(patch)));
}

at::Tensor PatchEmbedImpl::forward(const at::Tensor& x) {
  return proj->forward(x).flatten(2).transpose(1, 2);  // [B, D, h, w] -> [B, h*w, D]
}

ViT::ViT(const ViTOptions& o) : Model("VisionTransformer"), options_(o) {
  TORCH_CHECK(o.image_size() % o.patch_size() == 0, "ViT: image size ", o.image_size(),
              " is not a multiple of the patch size ", o.patch_size());
  num_classes_ = o.num_classes();
  const int64_t grid = o.image_size() / o.patch_size();
  patch_embed = register_module("patch_embed", PatchEmbed(o.in_chans(), o.dim(), o.patch_size()));
  cls_token = register_parameter("cls_token", at::zeros({1, 1, o.dim()}));
  pos_embed = register_parameter("pos_embed", at::zeros({1, grid * grid + 1, o.dim()}));
  blocks = register_module("blocks", nn::ModuleList());
  for (int64_t i = 0; i < o.depth(); ++i) {
    block_list_.push_back(ViTBlock(o, LinearDropPathRate(o.drop_path_rate(), i, o.depth())));
    blocks->push_back(block_list_.back());
  }
  norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({o.dim()}).eps(1e-6)));
  head = register_module("head", nn::Linear(o.dim(), o.num_classes()));
  // timm's default init: trunc normal 0.02 for position embeddings and Linear weights, zero
  // biases, a tiny normal for the class token.
  at::NoGradGuard no_grad;
  TruncNormal_(pos_embed, 0.02);
  cls_token.normal_(0.0, 1e-6);
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* linear = module->as<nn::Linear>()) {
      TruncNormal_(linear->weight, 0.02);
      linear->bias.zero_();
    }
  }
}

at::Tensor ViT::forward(at::Tensor x) {
  x = patch_embed->forward(x);  // [B, N, D]
  x = at::cat({cls_token.expand({x.size(0), -1, -1}), x}, 1) + pos_embed;
  for (auto& block : block_list_) {
    if (checkpointing_ && is_training()) {
      ViTBlock b = block;
      x = Checkpoint([b](const at::Tensor& t) mutable { return b->forward(t); }, x,
                     TrainableParameters(*block));
    } else {
      x = block->forward(x);
    }
  }
  x = norm->forward(x);
  return head->forward(x.select(1, 0));  // class token
}

double ViT::ForwardMacs(int64_t image_size) const {
  const auto& o = options_;
  const double grid = image_size / o.patch_size(), n = grid * grid + 1, d = o.dim();
  double macs = grid * grid * d * o.in_chans() * o.patch_size() * o.patch_size();
  // Per block: qkv (3 D^2) + proj (D^2) + MLP (2 D mlp) per token, plus QK^T and AV (2 N^2 D).
  macs += o.depth() * (n * (4 * d * d + 2 * d * o.mlp_dim()) + 2 * n * n * d);
  return macs + d * o.num_classes();
}

}  // namespace cf::models
