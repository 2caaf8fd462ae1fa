// Antialiased separable resampling of uint8 HWC images (image.h), the resize PIL's
// Image.resize(size, BILINEAR | BICUBIC) does and hence torchvision's Resize / RandomResizedCrop /
// CenterCrop on PIL images (they crop to a sub-image first, then resize it; so does
// ResampleRegion: the filter never reads outside the region).
//
// The math, per axis: scale = in / out; the filter (triangle with support 1, or Keys' cubic with
// a = -0.5 and support 2) is stretched by max(1, scale), so a downscale averages every input pixel
// under the output pixel (antialiasing) and an upscale interpolates. Output pixel i is centred at
// (i + 0.5) * scale in input coordinates; its weights cover the input pixels within the stretched
// support, clamped to the region, and are normalised to sum to 1, then stored as signed
// fixed-point integers with kResampleBits fraction bits. The horizontal pass runs first into a
// uint8 buffer (rounded, clamped), then the vertical pass; an axis whose size does not change is
// copied, not filtered. Results agree with PIL within 1 per pixel (resample_test measures it
// against a golden fixture from tools/golden/resize_golden.py).
//
// The inner loops are compiled once per x86-64 level and picked through ActiveCpuIsa()
// (base/cpu_isa.h); a CF_CPU_ISA value this CPU cannot run makes ResampleRegion throw
// std::invalid_argument naming it (the Loader turns that into the batch's error status).
// Thread-safe, no state.
#ifndef CONVFOREVER_DATA_RESAMPLE_H_
#define CONVFOREVER_DATA_RESAMPLE_H_

#include "convforever/data/image.h"

namespace cf::data {

inline constexpr int kResampleBits = 22;  // 255 * (sum of |weights|) * 2^22 stays below 2^31

enum class ResampleFilter { kTriangle, kCubic };  // PIL's BILINEAR and BICUBIC

// Region [y, y+h) x [x, x+w) of `img` resampled to (out_h, out_w). The region must lie inside the
// image and all sizes be >= 1.
Image ResampleRegion(const Image& img, int y, int x, int h, int w, int out_h, int out_w,
                     ResampleFilter filter);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_RESAMPLE_H_
