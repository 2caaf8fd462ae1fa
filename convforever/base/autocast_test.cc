// Proves LibTorch links and computes (tensor math, autograd) and that AutocastGuard behaves like
// Python's `torch.autocast`.
#include "convforever/base/autocast.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "gtest/gtest.h"

namespace cf::base {
namespace {

TEST(Torch, TensorMathAndAutograd) {
  at::Tensor a = at::arange(6, at::kFloat).reshape({2, 3});
  at::Tensor b = at::ones({3, 2});
  at::Tensor c = at::matmul(a, b);  // [[3,3],[12,12]]
  EXPECT_FLOAT_EQ(c[0][0].item<float>(), 3.0f);
  EXPECT_FLOAT_EQ(c[1][1].item<float>(), 12.0f);

  at::Tensor x = at::tensor({1.0f, 2.0f, 3.0f}).requires_grad_(true);
  at::Tensor y = (x * x).sum();  // dy/dx = 2x
  torch::autograd::backward({y});
  EXPECT_TRUE(at::allclose(x.grad(), at::tensor({2.0f, 4.0f, 6.0f})));
}

TEST(Autocast, AutocastGuardCastsAndRestores) {
  at::Tensor a = at::randn({4, 8});
  at::Tensor b = at::randn({8, 4});
  EXPECT_FALSE(IsAutocastEnabled(c10::DeviceType::CPU));
  {
    AutocastGuard guard(c10::DeviceType::CPU, at::kBFloat16);
    EXPECT_TRUE(IsAutocastEnabled(c10::DeviceType::CPU));
    EXPECT_EQ(at::matmul(a, b).scalar_type(), at::kBFloat16);
    {
      AutocastGuard off(c10::DeviceType::CPU, at::kBFloat16, /*enabled=*/false);
      EXPECT_EQ(at::matmul(a, b).scalar_type(), at::kBFloat16);  // a disabled guard is a no-op
    }
  }
  EXPECT_FALSE(IsAutocastEnabled(c10::DeviceType::CPU));
  EXPECT_EQ(at::matmul(a, b).scalar_type(), at::kFloat);
}

}  // namespace
}  // namespace cf::base
