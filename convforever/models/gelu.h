// GELU, x * Phi(x) with the exact (erf) normal CDF (Hendrycks & Gimpel, "Gaussian Error Linear
// Units", 2016; torch.nn.GELU()'s default), with its own vectorized CPU forward and backward.
//
// Why: LibTorch 1.13's CPU GELU ran at ~3 ns per element on the build machine (its AVX2 kernel),
// forward and backward alike, ~15% of a small ConvNeXt's training step. This one evaluates erf
// with the Abramowitz & Stegun 7.1.26 rational approximation (|error| <= 1.5e-7, the same formula
// ATen's vectorized erf uses) and exp with a degree-6 polynomial after range reduction, on
// vectors of 16, 8 or 4 floats compiled for AVX-512 (x86-64-v4), AVX2+FMA (v3) and baseline
// x86-64, the one run chosen by base::ActiveCpuIsa() (the CPU's best, or CF_CPU_ISA;
// base/cpu_isa.h).
// The backward shares the one exp(-x^2/2) between Phi and the normal density. Results match
// at::gelu / at::gelu_backward to ~3e-7 absolute (gelu_test); NaN in gives NaN out.
//
// Threads: the elements are split between LibTorch's intra-op threads (at::parallel_for, 32K
// elements a chunk). That needs gelu.cc compiled with -fopenmp (BUILD; a compile without it is an
// error): at::parallel_for is an inline OpenMP region, and without -fopenmp it ran on one thread,
// so at 2 threads this kernel lost to LibTorch's (as AVX2, in the default recipe's step:
// cf::gelu_backward ~2x torch's aten::gelu_backward) although it wins at 1 thread.
//
// Fast path: float32, CPU, autocast off; anything else is at::gelu. Shapes are unchanged;
// non-contiguous inputs are made contiguous first.
#ifndef CONVFOREVER_MODELS_GELU_H_
#define CONVFOREVER_MODELS_GELU_H_

#include <ATen/core/Tensor.h>

namespace cf::models {

at::Tensor Gelu(const at::Tensor& x);

// The kernels alone (float32 CPU; tests and benchmarks): GELU(x), and grad * GELU'(x).
at::Tensor GeluForward(const at::Tensor& x);
at::Tensor GeluBackward(const at::Tensor& grad, const at::Tensor& x);

}  // namespace cf::models

#endif  // CONVFOREVER_MODELS_GELU_H_
