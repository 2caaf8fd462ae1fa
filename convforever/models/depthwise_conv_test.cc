// DepthwiseConv2d's forward and its own backward against LibTorch's convolution (which
// torch.nn.functional.conv2d is), over the shapes ConvNeXt uses and the awkward ones: channel
// counts that are not a multiple of the 16-, 8- or 4-lane vector, 1x1 and non-square images,
// NCHW inputs, no bias, several threads; and the fallbacks (float64, autocast). The weight-gradient kernel's
// tests run once per CPU level (baseline, x86-64-v3, x86-64-v4), each forced; a level this CPU
// cannot run is reported as skipped.
#include "convforever/models/depthwise_conv.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "convforever/base/autocast.h"
#include "convforever/base/cpu_isa_testing.h"

namespace cf::models {
namespace {

struct Shape {
  int64_t b, c, h, w, k;
  bool bias;
  bool channels_last;
};

// Forward output and (grad_x, grad_w, grad_b) for a fixed upstream gradient.
std::vector<at::Tensor> RunConv(const Shape& s, bool ours) {
  at::manual_seed(7);
  at::Tensor x = at::randn({s.b, s.c, s.h, s.w});
  if (s.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  x.requires_grad_(true);
  at::Tensor w = (at::randn({s.c, 1, s.k, s.k}) * 0.2).requires_grad_(true);
  at::Tensor bias = s.bias ? at::randn({s.c}).requires_grad_(true) : at::Tensor();
  at::Tensor y = ours ? DepthwiseConv2d(x, w, bias)
                      : at::conv2d(x, w, bias, {1, 1}, {s.k / 2, s.k / 2}, {1, 1}, s.c);
  at::Tensor upstream = at::randn(y.sizes());
  std::vector<at::Tensor> inputs = {x, w};
  if (s.bias) inputs.push_back(bias);
  std::vector<at::Tensor> grads = torch::autograd::grad({y}, inputs, {upstream});
  grads.insert(grads.begin(), y.detach());
  return grads;
}

void ExpectMatches(const Shape& s) {
  ASSERT_TRUE(DepthwiseConv2dUsesFastPath(at::zeros({s.b, s.c, s.h, s.w}), at::zeros({s.c, 1, s.k, s.k})));
  std::vector<at::Tensor> ref = RunConv(s, /*ours=*/false);
  std::vector<at::Tensor> got = RunConv(s, /*ours=*/true);
  const char* names[] = {"output", "grad_x", "grad_w", "grad_b"};
  ASSERT_EQ(ref.size(), got.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_EQ(ref[i].sizes(), got[i].sizes()) << names[i];
    // Sums over up to B*H*W terms in another order: float32 rounding, relative to the scale.
    const double scale = ref[i].abs().max().item<double>() + 1e-6;
    const double diff = (ref[i] - got[i]).abs().max().item<double>();
    EXPECT_LT(diff / scale, 2e-5) << names[i] << " b" << s.b << " c" << s.c << " " << s.h << "x"
                                  << s.w << " k" << s.k << ": max diff " << diff;
  }
}

class DepthwiseConvAtLevel : public base::CpuIsaTest {};

TEST_P(DepthwiseConvAtLevel, MatchesLibTorchOnConvNeXtShapes) {
  ExpectMatches({8, 48, 7, 7, 7, true, true});
  ExpectMatches({8, 96, 3, 3, 7, true, true});
  ExpectMatches({8, 192, 1, 1, 7, true, true});
  ExpectMatches({4, 32, 14, 14, 7, true, true});
}

TEST_P(DepthwiseConvAtLevel, MatchesLibTorchOnAwkwardShapes) {
  ExpectMatches({3, 20, 5, 6, 7, true, true});   // 16 + 4 channels: vectors, then a scalar tail at v4
  ExpectMatches({2, 7, 9, 4, 3, true, false});   // fewer channels than a vector, NCHW input
  ExpectMatches({2, 33, 8, 11, 5, false, false});  // no bias
  ExpectMatches({1, 16, 2, 13, 7, true, true});  // kernel larger than the image
  ExpectMatches({2, 37, 9, 7, 7, true, true});   // 2 vectors + 5 channels, odd H and W
}

TEST_P(DepthwiseConvAtLevel, SeveralThreadsGiveTheSameGradients) {
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  std::vector<at::Tensor> one = RunConv({6, 48, 7, 7, 7, true, true}, true);
  at::set_num_threads(2);
  std::vector<at::Tensor> two = RunConv({6, 48, 7, 7, 7, true, true}, true);
  at::set_num_threads(before);
  // Two threads sum the weight gradient's per-image terms in two partial sums, so it may differ
  // from one thread's in float32 rounding, relative to its scale; a race or a lost partial sum
  // would be off by whole terms.
  for (size_t i = 0; i < one.size(); ++i) {
    const double scale = one[i].abs().max().item<double>() + 1e-6;
    const double diff = (one[i] - two[i]).abs().max().item<double>();
    EXPECT_LT(diff / scale, 2e-6) << i << ": max diff " << diff;
  }
  ExpectMatches({6, 48, 7, 7, 7, true, true});
}

INSTANTIATE_TEST_SUITE_P(Levels, DepthwiseConvAtLevel, base::AllCpuIsasForTesting(),
                         base::CpuIsaTestName);

TEST(DepthwiseConv2d, OtherCasesFallBackToLibTorch) {
  EXPECT_FALSE(DepthwiseConv2dUsesFastPath(at::zeros({2, 4, 5, 5}, at::kDouble),
                                           at::zeros({4, 1, 7, 7}, at::kDouble)));
  EXPECT_FALSE(DepthwiseConv2dUsesFastPath(at::zeros({2, 4, 5, 5}), at::zeros({4, 1, 9, 9})));
  EXPECT_FALSE(DepthwiseConv2dUsesFastPath(at::zeros({2, 4, 5, 5}), at::zeros({4, 2, 7, 7})));
  {
    base::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
    EXPECT_FALSE(DepthwiseConv2dUsesFastPath(at::zeros({2, 4, 5, 5}), at::zeros({4, 1, 7, 7})));
  }
  // The fallback computes the same convolution (float64 through LibTorch).
  at::Tensor x = at::randn({2, 4, 5, 5}, at::kDouble);
  at::Tensor w = at::randn({4, 1, 7, 7}, at::kDouble);
  EXPECT_TRUE(at::allclose(DepthwiseConv2d(x, w, at::Tensor()),
                           at::conv2d(x, w, {}, {1, 1}, {3, 3}, {1, 1}, 4)));
}

TEST(DepthwiseConv2d, WeightGradRejectsBadArguments) {
  EXPECT_THROW(DepthwiseConv2dWeightGrad(at::zeros({1, 2, 3, 3}), at::zeros({1, 2, 3, 3}), 4), c10::Error);
  EXPECT_THROW(DepthwiseConv2dWeightGrad(at::zeros({1, 2, 3, 3}), at::zeros({1, 2, 3, 4}), 3), c10::Error);
}

}  // namespace
}  // namespace cf::models
