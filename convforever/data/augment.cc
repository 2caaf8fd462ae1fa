#include "convforever/data/augment.h"

#include <algorithm>
#include <array>
#include <cmath>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "convforever/data/image_ops.h"

namespace cf::data {
namespace {

uint8_t Clamp(double v) { return static_cast<uint8_t>(std::min(255.0, std::max(0.0, std::round(v)))); }

template <typename F>
Image MapBytes(const Image& img, F f) {
  Image out(img.h, img.w, img.c);
  for (size_t i = 0; i < img.pixels.size(); ++i) out.pixels[i] = f(img.pixels[i]);
  return out;
}

Image Gray3(const Image& img) { return img.c == 1 ? img : ToChannels(ToChannels(img, 1), img.c); }

}  // namespace

Image Blend(const Image& img, const Image& deg, double factor) {
  Image out(img.h, img.w, img.c);
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    out.pixels[i] = Clamp(deg.pixels[i] + factor * (img.pixels[i] - deg.pixels[i]));
  }
  return out;
}

Image AdjustBrightness(const Image& img, double f) { return Blend(img, Image(img.h, img.w, img.c), f); }

Image AdjustContrast(const Image& img, double f) {
  const Image g = ToChannels(img, 1);
  double sum = 0;
  for (uint8_t v : g.pixels) sum += v;
  const double mean = g.pixels.empty() ? 0 : sum / g.pixels.size();
  Image deg(img.h, img.w, img.c);
  std::fill(deg.pixels.begin(), deg.pixels.end(), Clamp(mean));
  return Blend(img, deg, f);
}

Image AdjustSaturation(const Image& img, double f) { return img.c == 1 ? img : Blend(img, Gray3(img), f); }

Image AdjustSharpness(const Image& img, double f) {
  // PIL's SMOOTH kernel [[1,1,1],[1,5,1],[1,1,1]]/13 as the degenerate image.
  Image deg = img;
  cv::Mat src(img.h, img.w, CV_8UC(img.c), const_cast<uint8_t*>(img.data()));
  cv::Mat dst(img.h, img.w, CV_8UC(img.c), deg.data());
  cv::Mat k = (cv::Mat_<float>(3, 3) << 1, 1, 1, 1, 5, 1, 1, 1, 1) / 13.0f;
  cv::filter2D(src, dst, -1, k, cv::Point(-1, -1), 0, cv::BORDER_REPLICATE);
  return Blend(img, deg, f);
}

Image AutoContrast(const Image& img) {
  Image out = img;
  for (int ch = 0; ch < img.c; ++ch) {
    int lo = 255, hi = 0;
    for (size_t i = ch; i < img.pixels.size(); i += img.c) {
      lo = std::min<int>(lo, img.pixels[i]);
      hi = std::max<int>(hi, img.pixels[i]);
    }
    if (hi <= lo) continue;
    const double scale = 255.0 / (hi - lo);
    for (size_t i = ch; i < img.pixels.size(); i += img.c) out.pixels[i] = Clamp((img.pixels[i] - lo) * scale);
  }
  return out;
}

Image Equalize(const Image& img) {
  Image out = img;
  for (int ch = 0; ch < img.c; ++ch) {
    std::array<int64_t, 256> hist{};
    for (size_t i = ch; i < img.pixels.size(); i += img.c) ++hist[img.pixels[i]];
    int64_t total = 0, last = 0;
    for (int v = 0; v < 256; ++v) { total += hist[v]; if (hist[v]) last = hist[v]; }
    const int64_t step = (total - last) / 255;  // PIL's ImageOps.equalize
    if (step == 0) continue;
    std::array<uint8_t, 256> lut{};
    int64_t n = step / 2;
    for (int v = 0; v < 256; ++v) { lut[v] = static_cast<uint8_t>(std::min<int64_t>(255, n / step)); n += hist[v]; }
    for (size_t i = ch; i < img.pixels.size(); i += img.c) out.pixels[i] = lut[img.pixels[i]];
  }
  return out;
}

Image Invert(const Image& img) { return MapBytes(img, [](uint8_t v) { return uint8_t(255 - v); }); }

Image Posterize(const Image& img, int bits) {
  const uint8_t mask = static_cast<uint8_t>(~((1 << (8 - std::clamp(bits, 1, 8))) - 1));
  return MapBytes(img, [mask](uint8_t v) { return uint8_t(v & mask); });
}

Image Solarize(const Image& img, int t) {
  return MapBytes(img, [t](uint8_t v) { return v >= t ? uint8_t(255 - v) : v; });
}

Image SolarizeAdd(const Image& img, int add, int t) {
  return MapBytes(img, [add, t](uint8_t v) { return v < t ? Clamp(v + add) : v; });
}

Image Affine(const Image& img, const double m[6]) {
  Image out(img.h, img.w, img.c);
  cv::Mat src(img.h, img.w, CV_8UC(img.c), const_cast<uint8_t*>(img.data()));
  cv::Mat dst(img.h, img.w, CV_8UC(img.c), out.data());
  cv::Mat mat = (cv::Mat_<double>(2, 3) << m[0], m[1], m[2], m[3], m[4], m[5]);
  cv::warpAffine(src, dst, mat, dst.size(), cv::INTER_NEAREST | cv::WARP_INVERSE_MAP,
                 cv::BORDER_CONSTANT, cv::Scalar::all(128));
  return out;
}

Image ColorJitter(const Image& img, double s, Rng& rng) {
  std::array<int, 3> order = {0, 1, 2};
  for (int i = 2; i > 0; --i) std::swap(order[i], order[rng.Below(i + 1)]);
  Image out = img;
  for (int op : order) {
    const double f = rng.Uniform(std::max(0.0, 1 - s), 1 + s);
    out = op == 0 ? AdjustBrightness(out, f) : op == 1 ? AdjustContrast(out, f) : AdjustSaturation(out, f);
  }
  return out;
}

const std::vector<std::string>& RandAugmentOps() {
  static const auto* ops = new std::vector<std::string>{
      "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd",
      "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel",
      "TranslateYRel"};
  return *ops;
}

Image ApplyRandAugmentOp(const Image& img, const std::string& op, double m, Rng& rng) {
  const double level = std::clamp(m, 0.0, 10.0) / 10.0;
  const double sign = rng.Bernoulli(0.5) ? -1.0 : 1.0;
  if (op == "AutoContrast") return AutoContrast(img);
  if (op == "Equalize") return Equalize(img);
  if (op == "Invert") return Invert(img);
  if (op == "Posterize") return Posterize(img, 4 + static_cast<int>(std::lround(4 * (1 - level))));
  if (op == "Solarize") return Solarize(img, static_cast<int>(std::lround(256 * (1 - level))));
  if (op == "SolarizeAdd") return SolarizeAdd(img, static_cast<int>(std::lround(110 * level)));
  const double enhance = 1.0 + sign * 0.9 * level;
  if (op == "Color") return AdjustSaturation(img, enhance);
  if (op == "Contrast") return AdjustContrast(img, enhance);
  if (op == "Brightness") return AdjustBrightness(img, enhance);
  if (op == "Sharpness") return AdjustSharpness(img, enhance);
  const double cx = img.w * 0.5, cy = img.h * 0.5;
  if (op == "Rotate") {
    const double a = sign * 30.0 * level * M_PI / 180.0, c = std::cos(a), s = std::sin(a);
    const double m6[6] = {c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy};
    return Affine(img, m6);
  }
  if (op == "ShearX") { const double sh = sign * 0.3 * level, m6[6] = {1, sh, 0, 0, 1, 0}; return Affine(img, m6); }
  if (op == "ShearY") { const double sh = sign * 0.3 * level, m6[6] = {1, 0, 0, sh, 1, 0}; return Affine(img, m6); }
  if (op == "TranslateXRel") { const double m6[6] = {1, 0, sign * 0.45 * level * img.w, 0, 1, 0}; return Affine(img, m6); }
  if (op == "TranslateYRel") { const double m6[6] = {1, 0, 0, 0, 1, sign * 0.45 * level * img.h}; return Affine(img, m6); }
  return img;
}

Image RandAugment(const Image& img, int n, int m, Rng& rng) {
  const auto& ops = RandAugmentOps();
  Image out = img;
  for (int i = 0; i < n; ++i) {
    const std::string& op = ops[rng.Below(ops.size())];
    if (rng.Bernoulli(0.5)) out = ApplyRandAugmentOp(out, op, m, rng);
  }
  return out;
}

Image RandomErasing(const Image& img, double p, Rng& rng) {
  if (!rng.Bernoulli(p)) return img;
  const double area = static_cast<double>(img.h) * img.w;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.Uniform(0.02, 1.0 / 3.0);
    const double ratio = std::exp(rng.Uniform(std::log(0.3), std::log(1 / 0.3)));
    const int h = static_cast<int>(std::lround(std::sqrt(target * ratio)));
    const int w = static_cast<int>(std::lround(std::sqrt(target / ratio)));
    if (h <= 0 || w <= 0 || h >= img.h || w >= img.w) continue;
    const int y = static_cast<int>(rng.Below(img.h - h + 1)), x = static_cast<int>(rng.Below(img.w - w + 1));
    std::vector<uint8_t> fill(static_cast<size_t>(h) * w * img.c);
    for (auto& v : fill) v = static_cast<uint8_t>(rng.Below(256));
    Image out = img;
    FillRegion(&out, y, x, h, w, fill);
    return out;
  }
  return img;
}

}  // namespace cf::data
