// Depthwise 2-D convolution (groups == channels, stride 1, "same" padding) with a faster CPU
// backward than LibTorch 1.13's.
//
// Why: in a ConvNeXt block the 7x7 depthwise convolution is a small share of the FLOPs, yet on
// the CPU its backward dominated the training step. Measured on the 2-core build machine (one
// thread, batch 128, 48 channels at 7x7, channels_last; see kernels_benchmark):
// oneDNN's forward took ~0.4 ms and its input gradient ~0.4 ms, but asking for the weight or the
// bias gradient cost ~2.5-3.4 ms each, and in NCHW every part took ~10 ms. So this function
//   - runs forward and the input gradient through LibTorch (oneDNN) on channels_last tensors,
//   - computes the bias gradient as a plain sum over [B, H, W],
//   - computes the weight gradient with its own kernel: a zero-padded NHWC copy of each image and
//     register-blocked accumulation over 16-, 8- or 4-channel groups, compiled for AVX-512,
//     AVX2+FMA and baseline x86-64, the one run chosen by base::ActiveCpuIsa() (base/cpu_isa.h),
//     the images split between LibTorch's intra-op threads (at::parallel_for, one partial sum per
//     thread; the file is compiled with -fopenmp, without which at::parallel_for ran on one thread).
// Results match torch.nn.functional.conv2d's to float32 rounding (depthwise_conv_test).
//
// Anything else (CUDA, non-float32, autocast on, a kernel size other than 3/5/7) goes straight to
// at::conv2d, so the function is always safe to call. Takes x [B, C, H, W] in any memory format,
// weight [C, 1, K, K], bias [C] or undefined; returns [B, C, H, W] (channels_last on the fast path).
#ifndef CONVFOREVER_MODELS_DEPTHWISE_CONV_H_
#define CONVFOREVER_MODELS_DEPTHWISE_CONV_H_

#include <ATen/core/Tensor.h>

namespace cf::models {

at::Tensor DepthwiseConv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// Whether DepthwiseConv2d would take its own backward for these arguments (tests, benchmarks).
bool DepthwiseConv2dUsesFastPath(const at::Tensor& x, const at::Tensor& weight);

// The weight gradient alone: grad_out and x [B, C, H, W] float32 CPU, kernel K in {3, 5, 7}
// with padding K/2; returns [C, 1, K, K]. Exposed for tests and the benchmark.
at::Tensor DepthwiseConv2dWeightGrad(const at::Tensor& grad_out, const at::Tensor& x, int64_t kernel);

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_DEPTHWISE_CONV_H_
