#include "convforever/models/simple_cnn.h"

namespace cf::models {

namespace nn = torch::nn;

SimpleCnn::SimpleCnn(int64_t in_chans, int64_t image_size, int64_t num_classes)
    : Model("SimpleCnn"), in_chans_(in_chans) {
  TORCH_CHECK(image_size >= 4, "simple_cnn needs images of at least 4x4, got ", image_size);
  num_classes_ = num_classes;
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in_chans, 16, 5).padding(2)));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(16, 32, 5).padding(2)));
  const int64_t side = image_size / 4;
  fc1 = register_module("fc1", nn::Linear(32 * side * side, 128));
  fc2 = register_module("fc2", nn::Linear(128, num_classes));
}

at::Tensor SimpleCnn::forward(at::Tensor x) {
  x = at::max_pool2d(at::relu(conv1->forward(x)), {2, 2});
  x = at::max_pool2d(at::relu(conv2->forward(x)), {2, 2});
  // flatten in NCHW order whatever the memory format, so fc1's weights mean the same thing.
  x = x.contiguous().flatten(1);
  return fc2->forward(at::relu(fc1->forward(x)));
}

double SimpleCnn::ForwardMacs(int64_t s) const {
  const double a = double(s) * s, b = double(s / 2) * (s / 2), side = double(s / 4) * (s / 4);
  return a * 16 * in_chans_ * 25 + b * 32 * 16 * 25 + side * 32 * 128 + 128.0 * num_classes_;
}

}  // namespace cf::models
