#include "convforever/models/depthwise_conv.h"

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

// N floats in GCC's vector extension, N the register width of the level compiled for (cpu_isa.h):
// 16 with AVX-512, 8 with AVX2, 4 with SSE2, so a kernel row's K accumulators stay in registers
// (with 16 lanes everywhere, AVX2's 7 x 2 accumulators spilled and ran slower than SSE2).
// aligned(4) allows unaligned loads.
template <int N>
struct FloatVec {
  typedef float type __attribute__((vector_size(4 * N), aligned(4)));
};

#define CF_INLINE inline __attribute__((always_inline))

// One image's contribution to the weight gradient of channels [c0, c0 + L) (L = N with
// FloatVec<N>, 1 with float): acc[ti][tj][c] += sum_{h,w} g[h][w][c] * xp[h + ti][w + tj][c], where xp
// is the image zero-padded by K/2 on each side ([H + K - 1, W + K - 1, C]) and acc is [K, K, C].
// For one kernel row ti the K accumulators live in registers across the whole image, and each
// gradient vector is loaded once for K multiply-adds.
template <int K, typename V>
CF_INLINE void AccumulateChannels(const float* xp, const float* g, int64_t H, int64_t W, int64_t C,
                                  int64_t c0, float* acc) {
  const int64_t Wp = W + K - 1;
  for (int ti = 0; ti < K; ++ti) {
    V s[K];
#pragma GCC unroll 7
    for (int tj = 0; tj < K; ++tj) std::memcpy(&s[tj], acc + (ti * K + tj) * C + c0, sizeof(V));
    for (int64_t h = 0; h < H; ++h) {
      const float* grow = g + h * W * C + c0;
      const float* xrow = xp + (h + ti) * Wp * C + c0;
      for (int64_t w = 0; w < W; ++w) {
        V gv;
        std::memcpy(&gv, grow + w * C, sizeof(V));
        const float* xv = xrow + w * C;
#pragma GCC unroll 7
        for (int tj = 0; tj < K; ++tj) {
          V x;
          std::memcpy(&x, xv + tj * C, sizeof(V));
          s[tj] += gv * x;
        }
      }
    }
#pragma GCC unroll 7
    for (int tj = 0; tj < K; ++tj) std::memcpy(acc + (ti * K + tj) * C + c0, &s[tj], sizeof(V));
  }
}

template <int K, int N>
CF_INLINE void AccumulateImage(const float* xp, const float* g, int64_t H, int64_t W, int64_t C,
                               float* acc) {
  int64_t c0 = 0;
  for (; c0 + N <= C; c0 += N) {
    AccumulateChannels<K, typename FloatVec<N>::type>(xp, g, H, W, C, c0, acc);
  }
  for (; c0 < C; ++c0) AccumulateChannels<K, float>(xp, g, H, W, C, c0, acc);
}

// One body for every kernel size, compiled once per level at its vector width: AVX-512
// (x86-64-v4), AVX2+FMA (v3) and baseline x86-64, the one run chosen by base::ActiveCpuIsa() (the
// build itself targets baseline x86-64).
template <int N>
CF_INLINE void AccumulateImageBody(int k, const float* xp, const float* g, int64_t H, int64_t W,
                                   int64_t C, float* acc) {
  switch (k) {
    case 3: AccumulateImage<3, N>(xp, g, H, W, C, acc); break;
    case 5: AccumulateImage<5, N>(xp, g, H, W, C, acc); break;
    case 7: AccumulateImage<7, N>(xp, g, H, W, C, acc); break;
  }
}

#define CF_DEPTHWISE_VARIANT(level, target, lanes)                                         \
  target void AccumulateImageK_##level(int k, const float* xp, const float* g, int64_t H,  \
                                       int64_t W, int64_t C, float* acc) {                 \
    AccumulateImageBody<lanes>(k, xp, g, H, W, C, acc);                                    \
  }
CF_DEPTHWISE_VARIANT(baseline, , 4)
CF_DEPTHWISE_VARIANT(x86_64_v3, CF_TARGET_X86_64_V3, 8)
CF_DEPTHWISE_VARIANT(x86_64_v4, CF_TARGET_X86_64_V4, 16)
#undef CF_DEPTHWISE_VARIANT

using AccumulateFn = void (*)(int, const float*, const float*, int64_t, int64_t, int64_t, float*);
constexpr base::CpuIsaVariants<AccumulateFn> kAccumulate = {
    AccumulateImageK_baseline, AccumulateImageK_x86_64_v3, AccumulateImageK_x86_64_v4};

bool SupportedKernel(int64_t k) { return k == 3 || k == 5 || k == 7; }

at::Tensor PlainDepthwise(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const int64_t pad = weight.size(-1) / 2;
  return at::conv2d(x, weight, bias, {1, 1}, {pad, pad}, {1, 1}, x.size(1));
}

struct DepthwiseConvFunction : public torch::autograd::Function<DepthwiseConvFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias) {
    at::Tensor xc = x.contiguous(at::MemoryFormat::ChannelsLast);
    ctx->save_for_backward({xc, weight});
    return PlainDepthwise(xc, weight, bias);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const int64_t k = weight.size(-1);
    const int64_t pad = k / 2;
    const at::Tensor g = grad_outputs[0].contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor grad_x, grad_w, grad_b;
    if (ctx->needs_input_grad(0)) {
      // oneDNN's input gradient is fast on channels_last; only ask it for that one.
      grad_x = std::get<0>(at::convolution_backward(g, x, weight, c10::nullopt, {1, 1}, {pad, pad},
                                                    {1, 1}, /*transposed=*/false, {0, 0}, x.size(1),
                                                    {true, false, false}));
    }
    if (ctx->needs_input_grad(1)) grad_w = DepthwiseConv2dWeightGrad(g, x, k);
    if (ctx->needs_input_grad(2)) grad_b = g.sum({0, 2, 3});
    return {grad_x, grad_w, grad_b};
  }
};

}  // namespace

bool DepthwiseConv2dUsesFastPath(const at::Tensor& x, const at::Tensor& weight) {
  return x.dim() == 4 && weight.dim() == 4 && x.device().is_cpu() &&
         x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat &&
         weight.size(0) == x.size(1) && weight.size(1) == 1 && weight.size(2) == weight.size(3) &&
         SupportedKernel(weight.size(2)) && !base::IsAutocastEnabled(c10::DeviceType::CPU);
}

at::Tensor DepthwiseConv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (!DepthwiseConv2dUsesFastPath(x, weight)) return PlainDepthwise(x, weight, bias);
  // Custom autograd functions take defined tensors only: a missing bias is a constant zero one.
  return DepthwiseConvFunction::apply(x, weight, bias.defined() ? bias : at::zeros({x.size(1)}, x.options()));
}

at::Tensor DepthwiseConv2dWeightGrad(const at::Tensor& grad_out, const at::Tensor& x, int64_t kernel) {
  TORCH_CHECK(SupportedKernel(kernel), "DepthwiseConv2dWeightGrad: kernel ", kernel, " not in {3, 5, 7}");
  TORCH_CHECK(x.dim() == 4 && grad_out.sizes() == x.sizes() && x.scalar_type() == at::kFloat &&
                  grad_out.scalar_type() == at::kFloat && x.device().is_cpu(),
              "DepthwiseConv2dWeightGrad: want float32 CPU grad_out and x of equal [B, C, H, W]");
  RECORD_FUNCTION("cf::depthwise_conv2d_weight_grad", std::vector<c10::IValue>());  // profile tables
  // NHWC in memory: channels_last strides of the logical [B, C, H, W] tensors.
  const at::Tensor xs = x.contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor gs = grad_out.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t pad = kernel / 2, Hp = H + kernel - 1, Wp = W + kernel - 1;
  const absl::StatusOr<base::CpuIsa> isa = base::ActiveCpuIsa();
  TORCH_CHECK(isa.ok(), "DepthwiseConv2dWeightGrad: ", isa.status().message());
  const AccumulateFn accumulate = kAccumulate.For(*isa);
  const int threads = at::get_num_threads();
  std::vector<std::vector<float>> partial(threads, std::vector<float>(kernel * kernel * C, 0.0f));
  const float* xdata = xs.data_ptr<float>();
  const float* gdata = gs.data_ptr<float>();
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> padded(Hp * Wp * C, 0.0f);  // borders stay zero
    float* acc = partial[at::get_thread_num()].data();
    for (int64_t b = begin; b < end; ++b) {
      const float* image = xdata + b * H * W * C;
      for (int64_t h = 0; h < H; ++h) {
        std::memcpy(padded.data() + ((h + pad) * Wp + pad) * C, image + h * W * C,
                    sizeof(float) * W * C);
      }
      accumulate(static_cast<int>(kernel), padded.data(), gdata + b * H * W * C, H, W, C, acc);
    }
  });
  at::Tensor sum = at::zeros({kernel * kernel, C}, x.options().memory_format(at::MemoryFormat::Contiguous));
  float* out = sum.data_ptr<float>();
  for (const std::vector<float>& p : partial) {
    for (size_t i = 0; i < p.size(); ++i) out[i] += p[i];
  }
  // [K*K, C] -> [C, 1, K, K]
  return sum.t().contiguous().view({C, 1, kernel, kernel});
}

}  // namespace cf::models
