#include "convforever/data/resample.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/base/cpu_isa.h"

namespace cf::data {
namespace {

double Triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Keys' cubic convolution with a = -0.5 (PIL's BICUBIC).
double Cubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// One axis' weights: output i reads inputs [first[i], first[i] + count[i]) with the weights at
// weights[i * taps ...].
struct AxisWeights {
  int taps = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

AxisWeights ComputeAxisWeights(int in, int out, ResampleFilter filter) {
  const double support0 = filter == ResampleFilter::kTriangle ? 1.0 : 2.0;
  double (*f)(double) = filter == ResampleFilter::kTriangle ? Triangle : Cubic;
  const double scale = static_cast<double>(in) / out;
  const double stretch = std::max(scale, 1.0);
  const double support = support0 * stretch;
  AxisWeights a;
  a.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  a.first.resize(out);
  a.count.resize(out);
  a.weights.assign(static_cast<size_t>(out) * a.taps, 0);
  std::vector<double> w(a.taps);
  for (int i = 0; i < out; ++i) {
    const double center = (i + 0.5) * scale;
    // Inputs whose centres (j + 0.5) lie within the support, as whole indices.
    const int lo = std::max(0, static_cast<int>(std::floor(center - support + 0.5)));
    const int hi = std::min(in, static_cast<int>(std::floor(center + support + 0.5)));
    const int n = std::min(hi - lo, a.taps);
    double sum = 0;
    for (int k = 0; k < n; ++k) {
      w[k] = f((lo + k + 0.5 - center) / stretch);
      sum += w[k];
    }
    a.first[i] = lo;
    a.count[i] = n;
    for (int k = 0; k < n; ++k) {
      const double v = sum != 0 ? w[k] / sum : 0.0;
      a.weights[static_cast<size_t>(i) * a.taps + k] =
          static_cast<int32_t>(std::lround(v * (1 << kResampleBits)));
    }
  }
  return a;
}

#define CF_INLINE inline __attribute__((always_inline))

CF_INLINE uint8_t Clip8(int32_t acc) {
  const int32_t v = acc >> kResampleBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Horizontal pass over `rows` rows of C-channel pixels: src rows `src_stride` bytes apart,
// destination rows out_w * C bytes.
template <int C>
CF_INLINE void HorizontalRows(const uint8_t* src, size_t src_stride, int rows, const AxisWeights& a,
                              uint8_t* dst, int out_w) {
  constexpr int32_t kHalf = 1 << (kResampleBits - 1);
  for (int r = 0; r < rows; ++r) {
    const uint8_t* s = src + r * src_stride;
    uint8_t* d = dst + static_cast<size_t>(r) * out_w * C;
    for (int ox = 0; ox < out_w; ++ox) {
      const int32_t* w = &a.weights[static_cast<size_t>(ox) * a.taps];
      const uint8_t* p = s + static_cast<size_t>(a.first[ox]) * C;
      const int n = a.count[ox];
      int32_t acc[C];
      for (int c = 0; c < C; ++c) acc[c] = kHalf;
      for (int k = 0; k < n; ++k) {
        for (int c = 0; c < C; ++c) acc[c] += p[k * C + c] * w[k];
      }
      for (int c = 0; c < C; ++c) d[ox * C + c] = Clip8(acc[c]);
    }
  }
}

// Any channel count (4, say): the same loop with C at run time.
CF_INLINE void HorizontalRowsAnyC(const uint8_t* src, size_t src_stride, int rows, const AxisWeights& a,
                                  uint8_t* dst, int out_w, int C) {
  constexpr int32_t kHalf = 1 << (kResampleBits - 1);
  for (int r = 0; r < rows; ++r) {
    const uint8_t* s = src + r * src_stride;
    uint8_t* d = dst + static_cast<size_t>(r) * out_w * C;
    for (int ox = 0; ox < out_w; ++ox) {
      const int32_t* w = &a.weights[static_cast<size_t>(ox) * a.taps];
      const uint8_t* p = s + static_cast<size_t>(a.first[ox]) * C;
      for (int c = 0; c < C; ++c) {
        int32_t acc = kHalf;
        for (int k = 0; k < a.count[ox]; ++k) acc += p[k * C + c] * w[k];
        d[ox * C + c] = Clip8(acc);
      }
    }
  }
}

// Vertical pass: every output row is a weighted sum of whole input rows of `width` bytes (channels
// interleaved, so they need no care), N bytes at a time in int32 lanes.
template <int N>
struct Lanes {
  typedef int32_t VI __attribute__((vector_size(4 * N)));
  typedef uint8_t VB __attribute__((vector_size(N)));
};

template <int N>
CF_INLINE void VerticalRows(const uint8_t* src, size_t src_stride, const AxisWeights& a, uint8_t* dst,
                            int out_h, int width) {
  using VI = typename Lanes<N>::VI;
  using VB = typename Lanes<N>::VB;
  constexpr int32_t kHalf = 1 << (kResampleBits - 1);
  for (int oy = 0; oy < out_h; ++oy) {
    const int32_t* w = &a.weights[static_cast<size_t>(oy) * a.taps];
    const uint8_t* s = src + a.first[oy] * src_stride;
    const int n = a.count[oy];
    uint8_t* d = dst + static_cast<size_t>(oy) * width;
    int x = 0;
    for (; x + N <= width; x += N) {
      VI acc = VI{} + kHalf;
      for (int k = 0; k < n; ++k) {
        VB b;
        std::memcpy(&b, s + k * src_stride + x, N);
        acc += __builtin_convertvector(b, VI) * w[k];
      }
      acc >>= kResampleBits;
      acc = acc < 0 ? VI{} : acc;
      acc = acc > 255 ? VI{} + 255 : acc;
      const VB o = __builtin_convertvector(acc, VB);
      std::memcpy(d + x, &o, N);
    }
    for (; x < width; ++x) {
      int32_t acc = kHalf;
      for (int k = 0; k < n; ++k) acc += s[k * src_stride + x] * w[k];
      d[x] = Clip8(acc);
    }
  }
}

using HorizontalFn = void (*)(const uint8_t*, size_t, int, const AxisWeights&, uint8_t*, int, int);
using VerticalFn = void (*)(const uint8_t*, size_t, const AxisWeights&, uint8_t*, int, int);

// The bodies compiled once per level (base/cpu_isa.h); lanes = the level's int32 register width.
#define CF_RESAMPLE_VARIANT(level, target, lanes)                                                 \
  target void Horizontal_##level(const uint8_t* src, size_t stride, int rows, const AxisWeights& a, \
                                 uint8_t* dst, int out_w, int c) {                                  \
    if (c == 3) {                                                                                   \
      HorizontalRows<3>(src, stride, rows, a, dst, out_w);                                          \
    } else if (c == 1) {                                                                            \
      HorizontalRows<1>(src, stride, rows, a, dst, out_w);                                          \
    } else {                                                                                        \
      HorizontalRowsAnyC(src, stride, rows, a, dst, out_w, c);                                      \
    }                                                                                               \
  }                                                                                                 \
  target void Vertical_##level(const uint8_t* src, size_t stride, const AxisWeights& a, uint8_t* dst, \
                               int out_h, int width) {                                              \
    VerticalRows<lanes>(src, stride, a, dst, out_h, width);                                         \
  }
CF_RESAMPLE_VARIANT(baseline, , 4)
CF_RESAMPLE_VARIANT(x86_64_v3, CF_TARGET_X86_64_V3, 8)
CF_RESAMPLE_VARIANT(x86_64_v4, CF_TARGET_X86_64_V4, 16)
#undef CF_RESAMPLE_VARIANT

constexpr base::CpuIsaVariants<HorizontalFn> kHorizontal = {Horizontal_baseline, Horizontal_x86_64_v3,
                                                            Horizontal_x86_64_v4};
constexpr base::CpuIsaVariants<VerticalFn> kVertical = {Vertical_baseline, Vertical_x86_64_v3,
                                                        Vertical_x86_64_v4};

base::CpuIsa KernelIsa() {
  const absl::StatusOr<base::CpuIsa> isa = base::ActiveCpuIsa();
  if (!isa.ok()) throw std::invalid_argument("image resampling: " + std::string(isa.status().message()));
  return *isa;
}

}  // namespace

Image ResampleRegion(const Image& img, int y, int x, int h, int w, int out_h, int out_w,
                     ResampleFilter filter) {
  if (y < 0 || x < 0 || h < 1 || w < 1 || y + h > img.h || x + w > img.w || out_h < 1 || out_w < 1) {
    throw std::invalid_argument("ResampleRegion: region (y " + std::to_string(y) + ", x " + std::to_string(x) +
                                ", h " + std::to_string(h) + ", w " + std::to_string(w) + ") to " +
                                std::to_string(out_h) + "x" + std::to_string(out_w) + " does not fit a " +
                                std::to_string(img.h) + "x" + std::to_string(img.w) + " image");
  }
  const base::CpuIsa isa = KernelIsa();
  const int C = img.c;
  const size_t in_stride = static_cast<size_t>(img.w) * C;
  const uint8_t* region = img.data() + y * in_stride + static_cast<size_t>(x) * C;
  Image out(out_h, out_w, C);
  const size_t out_stride = static_cast<size_t>(out_w) * C;

  // Horizontal pass (only over the rows the vertical pass reads), unless the width stays.
  const uint8_t* mid = region;
  size_t mid_stride = in_stride;
  std::vector<uint8_t> buffer;
  AxisWeights ya;
  int row0 = 0, rows = h;
  if (out_h != h) {
    ya = ComputeAxisWeights(h, out_h, filter);
    row0 = ya.first.front();
    rows = ya.first.back() + ya.count.back() - row0;
  }
  if (out_w != w) {
    const AxisWeights xa = ComputeAxisWeights(w, out_w, filter);
    uint8_t* dst = out_h == h ? out.data() : nullptr;
    if (dst == nullptr) {
      buffer.resize(static_cast<size_t>(rows) * out_stride);
      dst = buffer.data();
    }
    kHorizontal.For(isa)(region + row0 * in_stride, in_stride, rows, xa, dst, out_w, C);
    if (out_h == h) return out;
    for (int& f : ya.first) f -= row0;  // the buffer starts at region row row0
    mid = buffer.data();
    mid_stride = out_stride;
  }
  if (out_h == h) {  // neither axis changes: a copy
    for (int r = 0; r < h; ++r) std::memcpy(out.data() + r * out_stride, region + r * in_stride, out_stride);
    return out;
  }
  kVertical.For(isa)(mid, mid_stride, ya, out.data(), out_h, static_cast<int>(out_stride));
  return out;
}

}  // namespace cf::data
