#include "convforever/models/resnet.h"

#include <torch/nn/init.h>

namespace cf::models {

namespace nn = torch::nn;

namespace {

nn::Conv2d Conv(int64_t in, int64_t out, int64_t k, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false));
}

// Output side of a 3x3 (or 7x7) window with stride 2 and "same" padding.
int64_t Down(int64_t r) { return (r - 1) / 2 + 1; }

}  // namespace

at::Tensor BlurPool(const at::Tensor& x) {
  const int64_t c = x.size(1);
  at::Tensor k1 = at::tensor({1.0f, 2.0f, 1.0f}, x.options());
  at::Tensor k2 = (k1.unsqueeze(1) * k1.unsqueeze(0)) / 16.0;  // [3, 3], sums to 1
  at::Tensor w = k2.expand({c, 1, 3, 3}).contiguous();
  at::Tensor padded = at::reflection_pad2d(x, {1, 1, 1, 1});
  const std::vector<int64_t> stride{2, 2}, padding{0, 0}, dilation{1, 1};
  return at::conv2d(padded, w, at::Tensor(), at::IntArrayRef(stride), at::IntArrayRef(padding),
                    at::IntArrayRef(dilation), c);
}

ResNetBlockImpl::ResNetBlockImpl(int64_t in_planes, int64_t planes, int64_t stride,
                                 bool bottleneck, bool blur_pool, double drop_path)
    : bottleneck_(bottleneck), blur_(blur_pool && stride > 1), drop_path_(drop_path) {
  const int64_t conv_stride = blur_ ? 1 : stride;
  const int64_t out_planes = bottleneck ? planes * 4 : planes;
  if (bottleneck) {
    conv1 = register_module("conv1", Conv(in_planes, planes, 1, 1));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", Conv(planes, planes, 3, conv_stride));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    conv3 = register_module("conv3", Conv(planes, out_planes, 1, 1));
    bn3 = register_module("bn3", nn::BatchNorm2d(out_planes));
  } else {
    conv1 = register_module("conv1", Conv(in_planes, planes, 3, conv_stride));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", Conv(planes, planes, 3, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
  }
  if (stride != 1 || in_planes != out_planes) {
    downsample = register_module(
        "downsample", nn::Sequential(Conv(in_planes, out_planes, 1, stride),
                                     nn::BatchNorm2d(out_planes)));
  }
}

at::Tensor ResNetBlockImpl::forward(const at::Tensor& x) {
  at::Tensor y = at::relu(bn1->forward(conv1->forward(x)));
  if (bottleneck_) {
    y = at::relu(bn2->forward(conv2->forward(y)));
    if (blur_) y = BlurPool(y);
    y = bn3->forward(conv3->forward(y));
  } else {
    if (blur_) y = BlurPool(y);
    y = bn2->forward(conv2->forward(y));
  }
  at::Tensor shortcut = downsample ? downsample->forward(x) : x;
  return at::relu(DropPath(y, drop_path_, is_training()) + shortcut);
}

ResNet::ResNet(const ResNetOptions& o) : Model("ResNet"), options_(o) {
  TORCH_CHECK(o.layers().size() == o.widths().size() && !o.layers().empty(),
              "ResNet: layers and widths must be non-empty and of equal length");
  num_classes_ = o.num_classes();
  const bool big_stem = o.stem_stride() >= 4;
  conv1 = register_module("conv1", big_stem ? Conv(o.in_chans(), o.widths()[0], 7, 2)
                                            : Conv(o.in_chans(), o.widths()[0], 3, o.stem_stride()));
  bn1 = register_module("bn1", nn::BatchNorm2d(o.widths()[0]));
  int64_t total = 0, index = 0;
  for (int64_t n : o.layers()) total += n;
  int64_t in_planes = o.widths()[0];
  for (size_t i = 0; i < o.layers().size(); ++i) {
    nn::ModuleList list;
    std::vector<ResNetBlock> blocks;
    for (int64_t j = 0; j < o.layers()[i]; ++j) {
      const int64_t stride = (i > 0 && j == 0) ? 2 : 1;
      blocks.push_back(ResNetBlock(in_planes, o.widths()[i], stride, o.bottleneck(), o.blur_pool(),
                                   LinearDropPathRate(o.drop_path_rate(), index++, total)));
      list->push_back(blocks.back());
      in_planes = o.bottleneck() ? o.widths()[i] * 4 : o.widths()[i];
    }
    layer_modules_.push_back(register_module("layer" + std::to_string(i + 1), list));
    layers_.push_back(std::move(blocks));
  }
  if (o.conv_head()) {
    fc_conv_ = register_module("fc", nn::Conv2d(nn::Conv2dOptions(in_planes, o.num_classes(), 1)));
    fc_module = fc_conv_.get();
  } else {
    fc_linear_ = register_module("fc", nn::Linear(in_planes, o.num_classes()));
    fc_module = fc_linear_.get();
  }
  at::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      if (!fc_conv_.is_empty() && conv == fc_conv_.get()) continue;
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    }
  }
}

at::Tensor ResNet::forward(at::Tensor x) {
  x = at::relu(bn1->forward(conv1->forward(x)));
  if (options_.stem_stride() >= 4) {
    x = options_.blur_pool() ? BlurPool(at::max_pool2d(x, {3, 3}, {1, 1}, {1, 1}))
                             : at::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
  }
  for (auto& blocks : layers_) {
    auto run = [blocks](const at::Tensor& t) mutable {
      at::Tensor y = t;
      for (auto& b : blocks) y = b->forward(y);
      return y;
    };
    if (checkpointing_ && is_training()) {
      std::vector<at::Tensor> params;
      for (auto& b : blocks) {
        for (auto& p : TrainableParameters(*b)) params.push_back(p);
      }
      x = Checkpoint(run, x, params);
    } else {
      x = run(x);
    }
  }
  x = x.mean({2, 3}, /*keepdim=*/true);  // [B, C, 1, 1]
  if (fc_conv_) return fc_conv_->forward(x).flatten(1);
  return fc_linear_->forward(x.flatten(1));
}

double ResNet::ForwardMacs(int64_t image_size) const {
  const auto& o = options_;
  int64_t r = o.stem_stride() >= 4 ? Down(image_size)
                                   : (o.stem_stride() == 1 ? image_size : Down(image_size));
  const double stem_k = o.stem_stride() >= 4 ? 49 : 9;
  double macs = double(r) * r * o.widths()[0] * o.in_chans() * stem_k;
  if (o.stem_stride() >= 4) r = Down(r);
  int64_t in = o.widths()[0];
  for (size_t i = 0; i < o.layers().size(); ++i) {
    const double p = o.widths()[i];
    const int64_t out = o.bottleneck() ? o.widths()[i] * 4 : o.widths()[i];
    for (int64_t j = 0; j < o.layers()[i]; ++j) {
      const int64_t r_in = r;
      if (i > 0 && j == 0) r = Down(r);
      const double a_in = double(r_in) * r_in, a = double(r) * r;
      if (o.bottleneck()) {
        // conv1 runs at the input resolution; conv2 at the output one unless blur delays the stride.
        macs += a_in * p * in;
        macs += (o.blur_pool() ? a_in : a) * 9 * p * p + a * p * out;
      } else {
        macs += (o.blur_pool() ? a_in : a) * 9 * p * in + a * 9 * p * p;
      }
      if ((i > 0 && j == 0) || in != out) macs += a * out * in;
      in = out;
    }
  }
  return macs + double(in) * o.num_classes();
}

}  // namespace cf::models
