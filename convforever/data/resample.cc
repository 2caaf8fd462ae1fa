#include "convforever/data/resample.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

// Vertical pass, one byte at a time: every output row is a weighted sum of whole input rows of
// `width` bytes (channels interleaved, so they need no care).
CF_INLINE void VerticalRowsScalar(const uint8_t* src, size_t src_stride, const AxisWeights& a, uint8_t* dst,
                                  int out_h, int width) {
  constexpr int32_t kHalf = 1 << (kResampleBits - 1);
  for (int oy = 0; oy < out_h; ++oy) {
    const int32_t* w = &a.weights[static_cast<size_t>(oy) * a.taps];
    const uint8_t* s = src + a.first[oy] * src_stride;
    const int n = a.count[oy];
    uint8_t* d = dst + static_cast<size_t>(oy) * width;
    for (int x = 0; x < width; ++x) {
      int32_t acc = kHalf;
      for (int k = 0; k < n; ++k) acc += s[k * src_stride + x] * w[k];
      d[x] = Clip8(acc);
    }
  }
}

#if CF_CPU_ISA_HAS_VARIANTS
// AVX2 bodies (x86-64-v3; the v4 variant compiles the same code with AVX-512 enabled). uint8 is
// widened to int32 lanes (vpmovzxbd) and multiplied by the 22-bit weights (vpmulld): the same
// integer arithmetic as the scalar code, so every level gives the same bytes.

// 32 output bytes of a vertical pass: sum over n rows s + k * stride of bytes [x, x + 32).
CF_TARGET_X86_64_V3 CF_INLINE __m256i Rows32Avx2(const uint8_t* s, size_t stride, const int32_t* w, int n, int x) {
  __m256i acc[4];
  for (int j = 0; j < 4; ++j) acc[j] = _mm256_set1_epi32(1 << (kResampleBits - 1));
  for (int k = 0; k < n; ++k) {
    const uint8_t* p = s + k * stride + x;
    const __m256i wk = _mm256_set1_epi32(w[k]);
    for (int j = 0; j < 4; ++j) {
      const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8 * j)));
      acc[j] = _mm256_add_epi32(acc[j], _mm256_mullo_epi32(v, wk));
    }
  }
  for (int j = 0; j < 4; ++j) acc[j] = _mm256_srai_epi32(acc[j], kResampleBits);
  // int32 -> int16 -> uint8 with saturation (the clamp to 0..255); packs work per 128-bit half,
  // so the quarters come back in order through one permute.
  const __m256i lo = _mm256_packs_epi32(acc[0], acc[1]);  // 0-3 8-11 | 4-7 12-15
  const __m256i hi = _mm256_packs_epi32(acc[2], acc[3]);  // 16-19 24-27 | 20-23 28-31
  const __m256i bytes = _mm256_packus_epi16(lo, hi);       // 0-3 8-11 16-19 24-27 | 4-7 12-15 20-23 28-31
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

CF_TARGET_X86_64_V3 CF_INLINE void VerticalRowsAvx2(const uint8_t* src, size_t src_stride, const AxisWeights& a, uint8_t* dst,
                                int out_h, int width) {
  constexpr int32_t kHalf = 1 << (kResampleBits - 1);
  for (int oy = 0; oy < out_h; ++oy) {
    const int32_t* w = &a.weights[static_cast<size_t>(oy) * a.taps];
    const uint8_t* s = src + a.first[oy] * src_stride;
    const int n = a.count[oy];
    uint8_t* d = dst + static_cast<size_t>(oy) * width;
    int x = 0;
    for (; x + 32 <= width; x += 32) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + x), Rows32Avx2(s, src_stride, w, n, x));
    }
    for (; x < width; ++x) {
      int32_t acc = kHalf;
      for (int k = 0; k < n; ++k) acc += s[k * src_stride + x] * w[k];
      d[x] = Clip8(acc);
    }
  }
}

// Rounds, shifts and packs one pixel's [R G B 0 | R G B 0] sums to bytes R G B x.
CF_TARGET_X86_64_V3 CF_INLINE uint32_t FinishRgb(__m256i acc) {
  __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  sum = _mm_srai_epi32(_mm_add_epi32(sum, _mm_set1_epi32(1 << (kResampleBits - 1))), kResampleBits);
  return static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(sum, sum), sum)));
}

// Writes R G B of output pixel ox; all but a row's last pixel write a fourth byte too, which the
// next pixel overwrites.
CF_INLINE void StoreRgb(uint8_t* d, int ox, int out_w, uint32_t rgbx) {
  if (ox + 1 < out_w) {
    std::memcpy(d + 3 * ox, &rgbx, 4);
  } else {
    d[3 * ox] = static_cast<uint8_t>(rgbx);
    d[3 * ox + 1] = static_cast<uint8_t>(rgbx >> 8);
    d[3 * ox + 2] = static_cast<uint8_t>(rgbx >> 16);
  }
}

// Horizontal pass of RGB rows, two taps per step: 8 source bytes at pixel k hold pixels k and
// k + 1 (and 2 bytes of k + 2), spread to [R G B 0 | R G B 0] int32 lanes and multiplied by
// [w_k x4 | w_k+1 x4]. An odd count is padded with a zero weight. Reads up to 8 bytes past the
// last pixel a weight covers: the caller keeps that inside memory it owns (PaddedLastRow).
// The weight pairs are spread into vectors once per call, and two rows share them.
CF_TARGET_X86_64_V3 CF_INLINE void HorizontalRgbAvx2(const uint8_t* src, size_t src_stride, int rows, const AxisWeights& a,
                                 uint8_t* dst, int out_w) {
  const __m128i spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  // pairs[8 j ...]: pair j's [w_k x4 | w_k+1 x4] (a vector of __m256i would lose their alignment).
  std::vector<int32_t> pairs;
  std::vector<int> pair_begin(out_w + 1);
  for (int ox = 0; ox < out_w; ++ox) {
    pair_begin[ox] = static_cast<int>(pairs.size() / 8);
    const int32_t* w = &a.weights[static_cast<size_t>(ox) * a.taps];
    for (int k = 0; k < a.count[ox]; k += 2) {
      const int32_t w1 = k + 1 < a.count[ox] ? w[k + 1] : 0;
      pairs.insert(pairs.end(), {w[k], w[k], w[k], w[k], w1, w1, w1, w1});
    }
  }
  pair_begin[out_w] = static_cast<int>(pairs.size() / 8);
  const int32_t* pair_data = pairs.data();
  int r = 0;
  for (; r + 2 <= rows; r += 2) {
    const uint8_t* s0 = src + r * src_stride;
    const uint8_t* s1 = s0 + src_stride;
    uint8_t* d0 = dst + static_cast<size_t>(r) * out_w * 3;
    uint8_t* d1 = d0 + static_cast<size_t>(out_w) * 3;
    for (int ox = 0; ox < out_w; ++ox) {
      const size_t first = static_cast<size_t>(a.first[ox]) * 3;
      const uint8_t* p0 = s0 + first;
      const uint8_t* p1 = s1 + first;
      __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
      for (int j = pair_begin[ox], k = 0; j < pair_begin[ox + 1]; ++j, k += 6) {
        const __m256i wk = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair_data + 8 * j));
        const __m128i x0 = _mm_shuffle_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p0 + k)), spread);
        const __m128i x1 = _mm_shuffle_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p1 + k)), spread);
        acc0 = _mm256_add_epi32(acc0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(x0), wk));
        acc1 = _mm256_add_epi32(acc1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(x1), wk));
      }
      StoreRgb(d0, ox, out_w, FinishRgb(acc0));
      StoreRgb(d1, ox, out_w, FinishRgb(acc1));
    }
  }
  for (; r < rows; ++r) {
    const uint8_t* s0 = src + r * src_stride;
    uint8_t* d0 = dst + static_cast<size_t>(r) * out_w * 3;
    for (int ox = 0; ox < out_w; ++ox) {
      const uint8_t* p0 = s0 + static_cast<size_t>(a.first[ox]) * 3;
      __m256i acc0 = _mm256_setzero_si256();
      for (int j = pair_begin[ox], k = 0; j < pair_begin[ox + 1]; ++j, k += 6) {
        const __m128i x0 = _mm_shuffle_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p0 + k)), spread);
        const __m256i wk = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair_data + 8 * j));
        acc0 = _mm256_add_epi32(acc0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(x0), wk));
      }
      StoreRgb(d0, ox, out_w, FinishRgb(acc0));
    }
  }
}
#endif  // CF_CPU_ISA_HAS_VARIANTS

using HorizontalFn = void (*)(const uint8_t*, size_t, int, const AxisWeights&, uint8_t*, int, int);
using VerticalFn = void (*)(const uint8_t*, size_t, const AxisWeights&, uint8_t*, int, int);

void Horizontal_baseline(const uint8_t* src, size_t stride, int rows, const AxisWeights& a, uint8_t* dst,
                         int out_w, int c) {
  if (c == 3) {
    HorizontalRows<3>(src, stride, rows, a, dst, out_w);
  } else if (c == 1) {
    HorizontalRows<1>(src, stride, rows, a, dst, out_w);
  } else {
    HorizontalRowsAnyC(src, stride, rows, a, dst, out_w, c);
  }
}
void Vertical_baseline(const uint8_t* src, size_t stride, const AxisWeights& a, uint8_t* dst, int out_h,
                       int width) {
  VerticalRowsScalar(src, stride, a, dst, out_h, width);
}

#if CF_CPU_ISA_HAS_VARIANTS
#define CF_RESAMPLE_VARIANT(level, target)                                                            \
  target void Horizontal_##level(const uint8_t* src, size_t stride, int rows, const AxisWeights& a,   \
                                 uint8_t* dst, int out_w, int c) {                                    \
    if (c == 3) {                                                                                     \
      HorizontalRgbAvx2(src, stride, rows, a, dst, out_w);                                            \
    } else if (c == 1) {                                                                              \
      HorizontalRows<1>(src, stride, rows, a, dst, out_w);                                            \
    } else {                                                                                          \
      HorizontalRowsAnyC(src, stride, rows, a, dst, out_w, c);                                        \
    }                                                                                                 \
  }                                                                                                   \
  target void Vertical_##level(const uint8_t* src, size_t stride, const AxisWeights& a, uint8_t* dst, \
                               int out_h, int width) {                                                \
    VerticalRowsAvx2(src, stride, a, dst, out_h, width);                                              \
  }
CF_RESAMPLE_VARIANT(x86_64_v3, CF_TARGET_X86_64_V3)
CF_RESAMPLE_VARIANT(x86_64_v4, CF_TARGET_X86_64_V4)
#undef CF_RESAMPLE_VARIANT
constexpr base::CpuIsaVariants<HorizontalFn> kHorizontal = {Horizontal_baseline, Horizontal_x86_64_v3,
                                                            Horizontal_x86_64_v4};
constexpr base::CpuIsaVariants<VerticalFn> kVertical = {Vertical_baseline, Vertical_x86_64_v3,
                                                        Vertical_x86_64_v4};
#else
constexpr base::CpuIsaVariants<HorizontalFn> kHorizontal = {Horizontal_baseline, Horizontal_baseline,
                                                            Horizontal_baseline};
constexpr base::CpuIsaVariants<VerticalFn> kVertical = {Vertical_baseline, Vertical_baseline,
                                                        Vertical_baseline};
#endif

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
    // The vector kernels may read a few bytes past a row's last pixel: harmless inside the image,
    // but past the end of its buffer on its last row, so the pass's last row runs from a padded
    // copy.
    const HorizontalFn horizontal = kHorizontal.For(isa);
    const uint8_t* first_row = region + row0 * in_stride;
    horizontal(first_row, in_stride, rows - 1, xa, dst, out_w, C);
    std::vector<uint8_t> last(static_cast<size_t>(w) * C + 16, 0);
    std::memcpy(last.data(), first_row + (rows - 1) * in_stride, static_cast<size_t>(w) * C);
    horizontal(last.data(), 0, 1, xa, dst + (rows - 1) * out_stride, out_w, C);
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
