// kernels_benchmark: our two CPU kernels against the LibTorch ones the venv's torch 2.x runs, same
// tensors, same threads, in one run; prints ms (median) and the ratio libtorch_ms / ours_ms.
//  - the backward of a depthwise 7x7 convolution (ConvNeXt's): LibTorch's convolution_backward in
//    NCHW and channels_last vs DepthwiseConv2d's (oneDNN input gradient + our weight-gradient
//    kernel + a sum for the bias);
//  - GELU forward and backward at ConvNeXt MLP sizes: at::gelu / at::gelu_backward vs ours;
//  - ConvNeXt's MLP (Linear C->4C, GELU, Linear 4C->C) forward + backward on the CPU: on the
//    [B, H, W, C] view (two matmuls, what ConvNeXtBlockImpl runs) vs as two oneDNN 1x1
//    convolutions on channels_last (what it ran on LibTorch 1.13, where that was 2-10x faster),
//    same weights, LibTorch's GELU on both; kept to re-check that choice on new LibTorch releases;
//    and the same matmuls through the C++ frontend's torch::nn::functional::linear (what
//    nn::Linear's forward runs: on a 4-D input, matmul + a separate bias add_, where at::linear
//    runs one addmm), the form ConvNeXtMlpImpl ran before.
//
//   tools/cf bench kernels      (or bazel-bin/convforever/models/kernels_benchmark --threads=1)
// Our kernels run at the CPU's best level, or the one CF_CPU_ISA names (base/cpu_isa.h), printed
// first; LibTorch's kernels choose their own, so to measure as on an AVX2-only CPU cap both:
//   CF_CPU_ISA=x86-64-v3 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 .../kernels_benchmark
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/functional/linear.h>
#include <gflags/gflags.h>

#include "convforever/base/cpu_isa.h"
#include "convforever/models/depthwise_conv.h"
#include "convforever/models/gelu.h"

DEFINE_int32(threads, 1, "intra-op threads");
DEFINE_int32(iters, 20, "timed repetitions (median reported) after 3 warm-up ones");

namespace {

double MedianMs(const std::function<void()>& fn) {
  std::vector<double> ms;
  for (int i = 0; i < 3 + FLAGS_iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    auto t1 = std::chrono::steady_clock::now();
    if (i >= 3) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  at::set_num_threads(FLAGS_threads);
  if (const absl::StatusOr<cf::base::CpuIsa> isa = cf::base::ActiveCpuIsa(); !isa.ok()) {
    std::fprintf(stderr, "kernels_benchmark: %s\n", std::string(isa.status().message()).c_str());
    return 1;
  }
  std::printf("CPU kernels: %s\n\n", cf::base::DescribeActiveCpuIsa().c_str());
  struct Shape { int64_t b, c, hw; };
  const std::vector<Shape> shapes = {{128, 48, 7}, {128, 96, 3}, {128, 192, 1}, {128, 48, 14},
                                     {32, 96, 16}, {32, 192, 8}, {32, 384, 4}};
  std::printf("depthwise 7x7 backward (grad input + weight + bias), %d thread(s), median of %d\n",
              FLAGS_threads, FLAGS_iters);
  std::printf("%-22s %14s %14s %10s %8s\n", "[B, C, H, W]", "libtorch NCHW", "libtorch NHWC", "ours", "ratio");
  for (const Shape& s : shapes) {
    at::manual_seed(0);
    const at::Tensor x_nchw = at::randn({s.b, s.c, s.hw, s.hw});
    const at::Tensor x = x_nchw.contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor g = at::randn_like(x);
    const at::Tensor g_nchw = g.contiguous();
    const at::Tensor w = at::randn({s.c, 1, 7, 7});
    auto libtorch = [&](const at::Tensor& gg, const at::Tensor& xx) {
      return [&, gg, xx] {
        auto r = at::convolution_backward(gg, xx, w, c10::IntArrayRef{s.c}, {1, 1}, {3, 3}, {1, 1},
                                          false, {0, 0}, s.c, {true, true, true});
        (void)r;
      };
    };
    const double nchw = MedianMs(libtorch(g_nchw, x_nchw));
    const double nhwc = MedianMs(libtorch(g, x));
    const double ours = MedianMs([&] {
      auto gx = at::convolution_backward(g, x, w, c10::nullopt, {1, 1}, {3, 3}, {1, 1}, false,
                                         {0, 0}, s.c, {true, false, false});
      at::Tensor gw = cf::models::DepthwiseConv2dWeightGrad(g, x, 7);
      at::Tensor gb = g.sum({0, 2, 3});
    });
    char name[64];
    std::snprintf(name, sizeof(name), "[%ld, %ld, %ld, %ld]", s.b, s.c, s.hw, s.hw);
    std::printf("%-22s %11.2f ms %11.2f ms %7.2f ms %7.2fx\n", name, nchw, nhwc, ours,
                std::min(nchw, nhwc) / ours);
  }
  std::printf("\nGELU (exact erf), forward and backward, %d thread(s)\n", FLAGS_threads);
  std::printf("%-22s %12s %10s %8s %12s %10s %8s\n", "elements", "libtorch fwd", "ours fwd", "ratio",
              "libtorch bwd", "ours bwd", "ratio");
  for (int64_t n : {int64_t{128} * 49 * 192, int64_t{128} * 196 * 128, int64_t{32} * 256 * 384}) {
    const at::Tensor x = at::randn({n}) * 2;
    const at::Tensor g = at::randn({n});
    const double lf = MedianMs([&] { (void)at::gelu(x); });
    const double of = MedianMs([&] { (void)cf::models::GeluForward(x); });
    const double lb = MedianMs([&] { (void)at::gelu_backward(g, x); });
    const double ob = MedianMs([&] { (void)cf::models::GeluBackward(g, x); });
    std::printf("%-22ld %9.2f ms %7.2f ms %7.2fx %9.2f ms %7.2f ms %7.2fx\n", n, lf, of, lf / of,
                lb, ob, lb / ob);
  }
  std::printf("\nConvNeXt MLP forward + backward (input, weight and bias gradients), %d thread(s)\n",
              FLAGS_threads);
  std::printf("%-22s %16s %16s %8s %18s %8s\n", "[B, C, H, W]", "at::linear (ours)", "1x1 conv", "ratio",
              "matmul + add_", "ratio");
  for (const Shape& s : {Shape{128, 32, 14}, Shape{128, 64, 7}, Shape{128, 128, 4}, Shape{32, 96, 56},
                         Shape{32, 192, 28}}) {
    at::manual_seed(0);
    const at::Tensor x =
        at::randn({s.b, s.c, s.hw, s.hw}).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_();
    const at::Tensor w1 = (at::randn({4 * s.c, s.c}) * 0.1).requires_grad_();
    const at::Tensor b1 = at::zeros({4 * s.c}).requires_grad_();
    const at::Tensor w2 = (at::randn({s.c, 4 * s.c}) * 0.1).requires_grad_();
    const at::Tensor b2 = at::zeros({s.c}).requires_grad_();
    auto step = [&](const std::function<at::Tensor()>& forward) {
      return [&, forward] {
        at::Tensor y = forward();
        torch::autograd::backward({y}, {at::ones_like(y)});
        for (const at::Tensor& t : {x, w1, b1, w2, b2}) t.mutable_grad().reset();
      };
    };
    const double matmul = MedianMs(step([&] {
      at::Tensor h = at::linear(x.permute({0, 2, 3, 1}), w1, b1);
      return at::linear(at::gelu(h), w2, b2).permute({0, 3, 1, 2});
    }));
    const double conv = MedianMs(step([&] {
      at::Tensor h = at::conv2d(x, w1.view({4 * s.c, s.c, 1, 1}), b1);
      return at::conv2d(at::gelu(h), w2.view({s.c, 4 * s.c, 1, 1}), b2);
    }));
    const double frontend = MedianMs(step([&] {
      namespace F = torch::nn::functional;
      at::Tensor h = F::linear(x.permute({0, 2, 3, 1}), w1, b1);
      return F::linear(at::gelu(h), w2, b2).permute({0, 3, 1, 2});
    }));
    char name[64];
    std::snprintf(name, sizeof(name), "[%ld, %ld, %ld, %ld]", s.b, s.c, s.hw, s.hw);
    std::printf("%-22s %13.2f ms %13.2f ms %7.2fx %15.2f ms %7.2fx\n", name, matmul, conv,
                conv / matmul, frontend, frontend / matmul);
  }
  return 0;
}
