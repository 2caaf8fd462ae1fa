#include "convforever/models/gelu.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include "absl/status/statusor.h"
#include "convforever/base/autocast.h"
#include "convforever/base/cpu_isa.h"


// at::parallel_for is an inline OpenMP region in a LibTorch built with AT_PARALLEL_OPENMP; compiled
// without -fopenmp (BUILD's copts) it silently runs on one thread.
#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "compile with -fopenmp: LibTorch's at::parallel_for would run these kernels on one thread"
#endif

namespace cf::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#define CF_INLINE inline __attribute__((always_inline))

// The kernels on vectors of N floats (GCC's vector extension), N the register width of the level
// compiled for: 16 with AVX-512, 8 with AVX2, 4 with SSE2. (With 16 lanes everywhere, GCC lowered
// the comparisons and ?: of a vector wider than the registers one lane at a time: the AVX2
// variant ran at 4 ns per element.)
template <int N>
struct GeluMath {
  typedef float VF __attribute__((vector_size(4 * N)));
  typedef int32_t VI __attribute__((vector_size(4 * N)));

  static CF_INLINE VF Splat(float c) {
    VF v = {};
    return v + c;
  }

  // exp(v) for v <= 0 (callers pass -x^2/2). Cody-Waite range reduction v = n ln2 + r with
  // |r| <= ln2/2, Cephes' degree-6 polynomial for e^r, then the exponent bits of 2^n. Below -87
  // the argument is clamped (e^-87 ~ 1.6e-38 is still a normal float, and GELU only ever adds it
  // to or multiplies it by O(1) terms).
  static CF_INLINE VF ExpNonPositive(const VF& arg) {
    const VF v = arg < Splat(-87.0f) ? Splat(-87.0f) : arg;
    const VF magic = Splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
    const VF shifted = v * 1.44269504088896341f + magic;  // its low mantissa bits hold n
    const VF n = shifted - magic;
    const VF r = (v - n * 0.693359375f) - n * -2.12194440e-4f;
    VF p = Splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    VI bits;  // 2^n: the integer n read off `shifted` (magic's bits are 0x4B400000), as exponent
    std::memcpy(&bits, &shifted, sizeof(VF));
    bits = (bits - (0x4B400000 - 127)) << 23;
    VF scale;
    std::memcpy(&scale, &bits, sizeof(VF));
    return p * scale;
  }

  // Phi(x) and the shared e = exp(-x^2/2). Abramowitz & Stegun 7.1.26 for erf(|x|/sqrt(2)):
  // 1 - erf(z) = t (a1 + t (a2 + ...)) e^{-z^2}, t = 1 / (1 + p z); then Phi(x) = 1 - q for
  // x >= 0 and q for x < 0 with q = (1 - erf(|z|)) / 2, which keeps Phi's small tail accurate.
  static CF_INLINE VF NormalCdf(const VF& x, VF* e_out) {
    VF az = x * 0.70710678118654752f;
    az = az < Splat(0.0f) ? -az : az;
    const VF t = Splat(1.0f) / (az * 0.3275911f + 1.0f);
    VF poly = Splat(1.061405429f);
    poly = poly * t + -1.453152027f;
    poly = poly * t + 1.421413741f;
    poly = poly * t + -0.284496736f;
    poly = poly * t + 0.254829592f;
    poly = poly * t;
    const VF e = ExpNonPositive(x * x * -0.5f);
    *e_out = e;
    const VF q = poly * e * 0.5f;
    return x >= Splat(0.0f) ? Splat(1.0f) - q : q;
  }

  static CF_INLINE VF Load(const float* p) {
    VF v;
    std::memcpy(&v, p, sizeof(VF));
    return v;
  }

  static CF_INLINE void Store(float* p, const VF& v) { std::memcpy(p, &v, sizeof(VF)); }

  static CF_INLINE VF ForwardVec(const VF& x) {
    VF e;
    return x * NormalCdf(x, &e);
  }

  static CF_INLINE VF BackwardVec(const VF& g, const VF& x) {
    VF e;
    const VF cdf = NormalCdf(x, &e);
    return g * (cdf + x * e * 0.39894228040143268f);  // Phi(x) + x phi(x)
  }

  static CF_INLINE void Forward(const float* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + N <= n; i += N) Store(y + i, ForwardVec(Load(x + i)));
    if (i < n) {  // the tail through a zero-padded vector
      float in[N] = {}, out[N];
      std::memcpy(in, x + i, sizeof(float) * (n - i));
      Store(out, ForwardVec(Load(in)));
      std::memcpy(y + i, out, sizeof(float) * (n - i));
    }
  }

  static CF_INLINE void Backward(const float* g, const float* x, float* dx, int64_t n) {
    int64_t i = 0;
    for (; i + N <= n; i += N) Store(dx + i, BackwardVec(Load(g + i), Load(x + i)));
    if (i < n) {
      float gin[N] = {}, xin[N] = {}, out[N];
      std::memcpy(gin, g + i, sizeof(float) * (n - i));
      std::memcpy(xin, x + i, sizeof(float) * (n - i));
      Store(out, BackwardVec(Load(gin), Load(xin)));
      std::memcpy(dx + i, out, sizeof(float) * (n - i));
    }
  }
};

// The one body compiled once per level (cpu_isa.h) at that level's vector width.
#define CF_GELU_VARIANT(level, target, lanes)                                                \
  target void ForwardKernel_##level(const float* x, float* y, int64_t n) {                  \
    GeluMath<lanes>::Forward(x, y, n);                                                       \
  }                                                                                          \
  target void BackwardKernel_##level(const float* g, const float* x, float* dx, int64_t n) { \
    GeluMath<lanes>::Backward(g, x, dx, n);                                                  \
  }
CF_GELU_VARIANT(baseline, , 4)
CF_GELU_VARIANT(x86_64_v3, CF_TARGET_X86_64_V3, 8)
CF_GELU_VARIANT(x86_64_v4, CF_TARGET_X86_64_V4, 16)
#undef CF_GELU_VARIANT

using ForwardFn = void (*)(const float*, float*, int64_t);
using BackwardFn = void (*)(const float*, const float*, float*, int64_t);
constexpr base::CpuIsaVariants<ForwardFn> kForward = {
    ForwardKernel_baseline, ForwardKernel_x86_64_v3, ForwardKernel_x86_64_v4};
constexpr base::CpuIsaVariants<BackwardFn> kBackward = {
    BackwardKernel_baseline, BackwardKernel_x86_64_v3, BackwardKernel_x86_64_v4};

// The level to run at; a bad CF_CPU_ISA is thrown here, before any work is split into threads.
base::CpuIsa KernelIsa() {
  const absl::StatusOr<base::CpuIsa> isa = base::ActiveCpuIsa();
  TORCH_CHECK(isa.ok(), "GELU kernels: ", isa.status().message());
  return *isa;
}

constexpr int64_t kGrain = 1 << 15;  // elements per parallel task

bool FastPath(const at::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat &&
         !base::IsAutocastEnabled(c10::DeviceType::CPU);
}

// Elementwise kernels walk memory linearly, so a contiguous or channels_last tensor is used as it
// is (no copy) and its result gets the same layout; anything else is made contiguous first.
at::MemoryFormat LayoutOf(const at::Tensor& x) {
  if (x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return at::MemoryFormat::ChannelsLast;
  }
  return at::MemoryFormat::Contiguous;
}

struct GeluFunction : public torch::autograd::Function<GeluFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    at::Tensor xc = x.contiguous(LayoutOf(x));
    ctx->save_for_backward({xc});
    return GeluForward(xc);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    return {GeluBackward(grad_outputs[0], x)};
  }
};

}  // namespace

at::Tensor GeluForward(const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat, "GeluForward: float32 CPU only");
  RECORD_FUNCTION("cf::gelu", std::vector<c10::IValue>());  // named in --profile_steps tables
  const at::Tensor xc = x.contiguous(LayoutOf(x));
  at::Tensor y = at::empty_like(xc, LayoutOf(xc));
  const float* in = xc.data_ptr<float>();
  float* out = y.data_ptr<float>();
  const ForwardFn kernel = kForward.For(KernelIsa());
  at::parallel_for(0, xc.numel(), kGrain, [&](int64_t begin, int64_t end) {
    kernel(in + begin, out + begin, end - begin);
  });
  return y;
}

at::Tensor GeluBackward(const at::Tensor& grad, const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat &&
                  grad.scalar_type() == at::kFloat && grad.sizes() == x.sizes(),
              "GeluBackward: float32 CPU grad and x of equal shape only");
  RECORD_FUNCTION("cf::gelu_backward", std::vector<c10::IValue>());
  const at::MemoryFormat layout = LayoutOf(x);
  const at::Tensor xc = x.contiguous(layout);
  const at::Tensor gc = grad.contiguous(layout);
  at::Tensor dx = at::empty_like(xc, layout);
  const float* xin = xc.data_ptr<float>();
  const float* gin = gc.data_ptr<float>();
  float* out = dx.data_ptr<float>();
  const BackwardFn kernel = kBackward.For(KernelIsa());
  at::parallel_for(0, xc.numel(), kGrain, [&](int64_t begin, int64_t end) {
    kernel(gin + begin, xin + begin, out + begin, end - begin);
  });
  return dx;
}

at::Tensor Gelu(const at::Tensor& x) {
  if (!FastPath(x)) return at::gelu(x);
  if (!x.requires_grad() || !at::GradMode::is_enabled()) return GeluForward(x);
  return GeluFunction::apply(x);
}

}  // namespace cf::models
