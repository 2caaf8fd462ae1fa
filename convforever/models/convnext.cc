#include "convforever/models/convnext.h"

#include <torch/nn/functional/activation.h>

#include "convforever/models/depthwise_conv.h"
#include "convforever/models/gelu.h"

namespace cf::models {

namespace nn = torch::nn;

ConvNeXtMlpImpl::ConvNeXtMlpImpl(int64_t dim) {
  fc1 = register_module("fc1", nn::Linear(dim, 4 * dim));
  fc2 = register_module("fc2", nn::Linear(4 * dim, dim));
}

// at::linear, not nn::Linear's forward: the C++ frontend's torch::nn::functional::linear runs a
// [B, H, W, C] input as matmul + a separate in-place bias add_ (one more pass over the 4C-wide
// activation each way), where at::linear flattens a contiguous input to 2-D and runs one
// addmm (the bias folded into the GEMM), as PyTorch's nn.Linear does. Same parameters, so
// checkpoints and name maps are unchanged.
at::Tensor ConvNeXtMlpImpl::forward(const at::Tensor& x) {
  const at::Tensor h = at::linear(x, fc1->weight, fc1->bias);
  return at::linear(Gelu(h), fc2->weight, fc2->bias);  // exact GELU, our faster CPU kernel
}

ConvNeXtBlockImpl::ConvNeXtBlockImpl(int64_t dim, double drop_path, double layer_scale_init)
    : drop_path_(drop_path) {
  conv_dw = register_module(
      "conv_dw", nn::Conv2d(nn::Conv2dOptions(dim, dim, 7).padding(3).groups(dim)));
  norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6)));
  mlp = register_module("mlp", ConvNeXtMlp(dim));
  if (layer_scale_init > 0) {
    gamma = register_parameter("gamma", at::full({dim}, layer_scale_init));
  }
}

at::Tensor ConvNeXtBlockImpl::forward(const at::Tensor& x) {
  // conv_dw's weights through our depthwise convolution: same result, much faster CPU backward.
  // Its output keeps x's memory format; on channels_last the [B, H, W, C] view below is
  // contiguous, so the norm and the MLP's two Linear layers run on it without a copy.
  at::Tensor y = DepthwiseConv2d(x, conv_dw->weight, conv_dw->bias).permute({0, 2, 3, 1});
  // The norm runs in the weights' precision (see LayerNorm2dImpl::forward).
  y = mlp->forward(norm->forward(y.to(norm->weight.scalar_type())));
  if (gamma.defined()) y = y * gamma;
  y = y.permute({0, 3, 1, 2});
  return DropPath(y, drop_path_, is_training()) + x;
}

ConvNeXtStageImpl::ConvNeXtStageImpl(int64_t in_dim, int64_t dim, int64_t depth, bool downsample_,
                                     const std::vector<double>& drop_paths,
                                     double layer_scale_init) {
  if (downsample_) {
    downsample = register_module(
        "downsample",
        nn::Sequential(LayerNorm2d(in_dim), nn::Conv2d(nn::Conv2dOptions(in_dim, dim, 2).stride(2))));
  }
  blocks = register_module("blocks", nn::ModuleList());
  for (int64_t j = 0; j < depth; ++j) {
    block_list_.push_back(ConvNeXtBlock(dim, drop_paths[j], layer_scale_init));
    blocks->push_back(block_list_.back());
  }
}

at::Tensor ConvNeXtStageImpl::forward(const at::Tensor& x) {
  at::Tensor y = downsample ? downsample->forward(x) : x;
  for (auto& block : block_list_) y = block->forward(y);
  return y;
}

ConvNeXtHeadImpl::ConvNeXtHeadImpl(int64_t dim, int64_t num_classes) {
  norm = register_module("norm", LayerNorm2d(dim));
  fc = register_module("fc", nn::Linear(dim, num_classes));
}

at::Tensor ConvNeXtHeadImpl::forward(const at::Tensor& x) {
  at::Tensor pooled = x.mean({2, 3}, /*keepdim=*/true);  // [B, C, 1, 1]
  return fc->forward(norm->forward(pooled).flatten(1));
}

ConvNeXt::ConvNeXt(const ConvNeXtOptions& o) : Model("ConvNeXt"), options_(o) {
  TORCH_CHECK(!o.depths().empty() && o.depths().size() == o.dims().size(),
              "ConvNeXt: depths and dims must be non-empty and of equal length");
  num_classes_ = o.num_classes();
  const int64_t s = o.stem_stride();
  stem = register_module(
      "stem", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(o.in_chans(), o.dims()[0], s).stride(s)),
                             LayerNorm2d(o.dims()[0])));
  int64_t total = 0;
  for (int64_t d : o.depths()) total += d;
  stages = register_module("stages", nn::ModuleList());
  int64_t index = 0;
  for (size_t i = 0; i < o.depths().size(); ++i) {
    std::vector<double> rates;
    for (int64_t j = 0; j < o.depths()[i]; ++j) {
      rates.push_back(LinearDropPathRate(o.drop_path_rate(), index++, total));
    }
    const int64_t in_dim = i == 0 ? o.dims()[0] : o.dims()[i - 1];
    stage_list_.push_back(ConvNeXtStage(in_dim, o.dims()[i], o.depths()[i], i > 0, rates,
                                        o.layer_scale_init()));
    stages->push_back(stage_list_.back());
  }
  head = register_module("head", ConvNeXtHead(o.dims().back(), o.num_classes()));
  InitWeights();
}

void ConvNeXt::InitWeights() {
  at::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      TruncNormal_(conv->weight, 0.02);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* linear = module->as<nn::Linear>()) {
      TruncNormal_(linear->weight, 0.02);
      if (linear->bias.defined()) linear->bias.zero_();
    }
  }
}

at::Tensor ConvNeXt::forward(at::Tensor x) {
  x = stem->forward(x);
  for (auto& stage : stage_list_) {
    if (checkpointing_ && is_training()) {
      ConvNeXtStage s = stage;
      x = Checkpoint([s](const at::Tensor& t) mutable { return s->forward(t); }, x,
                     TrainableParameters(*stage));
    } else {
      x = stage->forward(x);
    }
  }
  return head->forward(x);
}

double ConvNeXt::ForwardMacs(int64_t image_size) const { return ConvNeXtMacs(options_, image_size); }

int64_t ConvNeXtParameterCount(const ConvNeXtOptions& o) {
  const int64_t s = o.stem_stride(), d0 = o.dims()[0];
  int64_t n = o.in_chans() * d0 * s * s + d0 + 2 * d0;  // stem conv + LayerNorm
  for (size_t i = 0; i < o.depths().size(); ++i) {
    const int64_t c = o.dims()[i];
    if (i > 0) n += 2 * o.dims()[i - 1] + o.dims()[i - 1] * c * 4 + c;  // LN + conv 2x2
    // dwconv (49C + C), LN (2C), fc1 (4C^2 + 4C), fc2 (4C^2 + C), gamma (C).
    const int64_t block = 50 * c + 2 * c + 8 * c * c + 5 * c + (o.layer_scale_init() > 0 ? c : 0);
    n += o.depths()[i] * block;
  }
  const int64_t last = o.dims().back();
  return n + 2 * last + last * o.num_classes() + o.num_classes();
}

double ConvNeXtMacs(const ConvNeXtOptions& o, int64_t image_size) {
  const double s = o.stem_stride();
  int64_t r = image_size / o.stem_stride();
  double macs = double(r) * r * o.dims()[0] * o.in_chans() * s * s;
  for (size_t i = 0; i < o.depths().size(); ++i) {
    const double c = o.dims()[i];
    if (i > 0) {
      r /= 2;
      macs += double(r) * r * c * o.dims()[i - 1] * 4;
    }
    // Per block: 7x7 depthwise (49 C) + two pointwise layers (2 * 4 C^2) per position.
    macs += o.depths()[i] * double(r) * r * (49.0 * c + 8.0 * c * c);
  }
  return macs + double(o.dims().back()) * o.num_classes();
}

std::vector<int64_t> SplitDepth(int64_t total, int64_t stages) {
  std::vector<int64_t> out(stages, total / stages);
  for (int64_t i = 0; i < total % stages; ++i) ++out[i];
  return out;
}

}  // namespace cf::models
