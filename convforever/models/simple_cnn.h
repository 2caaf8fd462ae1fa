// The basic CNN (LeNet-style, LeCun et al. 1998): conv 5x5 (pad 2) -> ReLU -> maxpool 2 ->
// conv 5x5 -> ReLU -> maxpool 2 -> FC -> ReLU -> FC. For 28x28x1 inputs: 1->16->32 channels,
// FC 1568->128->10. Generalized to any input channels, image size (>= 4) and class count: the
// first FC takes 32 * (size/4)^2 features. Names: conv1, conv2, fc1, fc2.
// Input `[B, in_chans, S, S]` -> logits `[B, num_classes]`.
#ifndef CONVFOREVER_MODELS_SIMPLE_CNN_H_
#define CONVFOREVER_MODELS_SIMPLE_CNN_H_

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "convforever/models/model.h"

namespace cf::models {

class SimpleCnn : public Model {
 public:
  SimpleCnn(int64_t in_chans, int64_t image_size, int64_t num_classes);
  at::Tensor forward(at::Tensor x) override;
  std::string family() const override { return "simple_cnn"; }
  double ForwardMacs(int64_t image_size) const override;
  int64_t in_chans() const { return in_chans_; }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};

 private:
  int64_t in_chans_;
};

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_SIMPLE_CNN_H_
