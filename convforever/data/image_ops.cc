#include "convforever/data/image_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "convforever/data/resample.h"

namespace cf::data {
namespace {

int CvType(int c) { return CV_8UC(c); }

cv::Mat View(const Image& img) {
  return cv::Mat(img.h, img.w, CvType(img.c), const_cast<uint8_t*>(img.data()));
}

int CvInterp(Interp i) { return i == Interp::kArea ? cv::INTER_AREA : cv::INTER_NEAREST; }

}  // namespace

absl::StatusOr<Interp> ParseInterp(const std::string& name) {
  if (name == "bilinear") return Interp::kBilinear;
  if (name == "bicubic") return Interp::kBicubic;
  if (name == "area") return Interp::kArea;
  if (name == "nearest") return Interp::kNearest;
  return absl::InvalidArgumentError("unknown interpolation '" + name +
                                    "' (expected bilinear, bicubic, area or nearest)");
}

Image ResizedCrop(const Image& img, int y, int x, int h, int w, int out_h, int out_w,
                  Interp interp) {
  if (interp == Interp::kBilinear || interp == Interp::kBicubic) {
    return ResampleRegion(img, y, x, h, w, out_h, out_w,
                          interp == Interp::kBilinear ? ResampleFilter::kTriangle : ResampleFilter::kCubic);
  }
  Image out(out_h, out_w, img.c);
  cv::Mat src = View(img)(cv::Rect(x, y, w, h));
  cv::Mat dst(out_h, out_w, CvType(img.c), out.data());
  if (h == out_h && w == out_w) {
    src.copyTo(dst);
  } else {
    cv::resize(src, dst, cv::Size(out_w, out_h), 0, 0, CvInterp(interp));
  }
  return out;
}

Image Resize(const Image& img, int out_h, int out_w, Interp interp) {
  return ResizedCrop(img, 0, 0, img.h, img.w, out_h, out_w, interp);
}

Image ResizeShorter(const Image& img, int size, Interp interp) {
  if (img.h <= img.w) {
    const int w = static_cast<int>(static_cast<int64_t>(size) * img.w / img.h);
    return Resize(img, size, std::max(w, 1), interp);
  }
  const int h = static_cast<int>(static_cast<int64_t>(size) * img.h / img.w);
  return Resize(img, std::max(h, 1), size, interp);
}

Image Crop(const Image& img, int y, int x, int h, int w) {
  return ResizedCrop(img, y, x, h, w, h, w, Interp::kNearest);
}

Image CenterCrop(const Image& img, int h, int w) {
  if (img.h >= h && img.w >= w) {
    // Python's round() is half-to-even, and torchvision uses it: nearbyint matches.
    const int top = static_cast<int>(std::nearbyint((img.h - h) / 2.0));
    const int left = static_cast<int>(std::nearbyint((img.w - w) / 2.0));
    return Crop(img, top, left, h, w);
  }
  // Smaller than the crop: pad symmetrically with zeros as torchvision does.
  const int pad_y = std::max(0, (h - img.h + 1) / 2), pad_x = std::max(0, (w - img.w + 1) / 2);
  const int pad = std::max(pad_y, pad_x);
  Image padded = PadCrop(img, pad, 0, 0, img.h + 2 * pad, img.w + 2 * pad);
  return CenterCrop(padded, h, w);
}

Image PadCrop(const Image& img, int pad, int y, int x, int h, int w) {
  Image out(h, w, img.c);  // zero-filled
  const size_t px = img.c;
  for (int oy = 0; oy < h; ++oy) {
    const int sy = oy + y - pad;
    if (sy < 0 || sy >= img.h) continue;
    const int x0 = std::max(0, pad - x), x1 = std::min(w, img.w + pad - x);
    if (x1 <= x0) continue;
    std::memcpy(&out.pixels[(static_cast<size_t>(oy) * w + x0) * px],
                &img.pixels[(static_cast<size_t>(sy) * img.w + (x0 + x - pad)) * px],
                (x1 - x0) * px);
  }
  return out;
}

namespace {

// Row reversal with the pixel size C known at compile time (a fixed-size copy per pixel).
template <int C>
void ReverseRows(const Image& img, Image* out) {
  for (int y = 0; y < img.h; ++y) {
    const uint8_t* src = img.data() + static_cast<size_t>(y) * img.w * C;
    uint8_t* dst = out->data() + static_cast<size_t>(y) * img.w * C + static_cast<size_t>(img.w - 1) * C;
    for (int x = 0; x < img.w; ++x, src += C, dst -= C) {
      for (int ch = 0; ch < C; ++ch) dst[ch] = src[ch];
    }
  }
}

}  // namespace

Image HFlip(const Image& img) {
  Image out(img.h, img.w, img.c);
  if (img.c == 3) {
    ReverseRows<3>(img, &out);
  } else if (img.c == 1) {
    ReverseRows<1>(img, &out);
  } else {
    const int c = img.c;
    for (int y = 0; y < img.h; ++y) {
      const uint8_t* src = img.data() + static_cast<size_t>(y) * img.w * c;
      uint8_t* dst = out.data() + static_cast<size_t>(y) * img.w * c;
      for (int x = 0; x < img.w; ++x) std::memcpy(dst + (img.w - 1 - x) * c, src + x * c, c);
    }
  }
  return out;
}

Image ToChannels(const Image& img, int channels) {
  if (img.c == channels) return img;
  Image out(img.h, img.w, channels);
  const size_t n = static_cast<size_t>(img.h) * img.w;
  if (img.c == 1 && channels == 3) {
    for (size_t i = 0; i < n; ++i) {
      out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = img.pixels[i];
    }
  } else if (channels == 1 && img.c >= 3) {
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &img.pixels[img.c * i];
      // Fixed-point 601-2 luma with PIL's rounding.
      out.pixels[i] = static_cast<uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
    }
  } else if (channels == 3 && img.c == 4) {
    for (size_t i = 0; i < n; ++i) std::memcpy(&out.pixels[3 * i], &img.pixels[4 * i], 3);
  } else {
    for (size_t i = 0; i < n; ++i) {
      for (int ch = 0; ch < channels; ++ch) out.pixels[channels * i + ch] = img.pixels[img.c * i + std::min(ch, img.c - 1)];
    }
  }
  return out;
}

void FillRegion(Image* img, int y, int x, int h, int w, const std::vector<uint8_t>& fill) {
  size_t k = 0;
  for (int yy = y; yy < y + h; ++yy) {
    uint8_t* row = img->data() + (static_cast<size_t>(yy) * img->w + x) * img->c;
    for (int i = 0; i < w * img->c; ++i) row[i] = fill.empty() ? 0 : fill[k++ % fill.size()];
  }
}

}  // namespace cf::data
