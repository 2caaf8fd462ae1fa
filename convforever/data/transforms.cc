#include "convforever/data/transforms.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "convforever/data/augment.h"
#include "convforever/data/image_ops.h"

namespace cf::data {

absl::Status ValidateTransformOptions(const TransformOptions& o) {
  const std::string& c = o.train_crop;
  if (c != "auto" && c != "rrc" && c != "pad_crop" && c != "none") {
    return absl::InvalidArgumentError("train_crop must be auto, rrc, pad_crop or none, got '" + c + "'");
  }
  for (const auto& [name, v] : {std::pair<const char*, const std::string&>{"train_decode", o.train_decode},
                                {"eval_decode", o.eval_decode}}) {
    if (v != "full" && v != "draft") {
      return absl::InvalidArgumentError(absl::StrCat(name, " must be full or draft, got '", v, "'"));
    }
  }
  if (!ParseInterp(o.interpolation).ok()) return ParseInterp(o.interpolation).status();
  if (!(o.scale_min > 0 && o.scale_min <= o.scale_max && o.scale_max <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("bad RandomResizedCrop scale [", o.scale_min, ", ", o.scale_max, "]"));
  }
  if (!(o.ratio_min > 0 && o.ratio_min <= o.ratio_max)) {
    return absl::InvalidArgumentError(absl::StrCat("bad RandomResizedCrop ratio [", o.ratio_min, ", ", o.ratio_max, "]"));
  }
  if (!(o.crop_pct > 0 && o.crop_pct <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("crop_pct must be in (0, 1], got ", o.crop_pct));
  }
  if (o.mean.size() != o.std.size()) return absl::InvalidArgumentError("mean and std differ in length");
  for (float s : o.std) {
    if (!(s > 0)) return absl::InvalidArgumentError("normalization std must be > 0");
  }
  if (o.randaugment_n < 0 || o.pad < 0) return absl::InvalidArgumentError("negative randaugment_n or pad");
  return absl::OkStatus();
}

CropBox SampleRandomResizedCrop(int H, int W, const TransformOptions& o, Rng& rng) {
  const double area = static_cast<double>(H) * W;
  const double log_lo = std::log(o.ratio_min), log_hi = std::log(o.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.Uniform(o.scale_min, o.scale_max);
    const double ratio = std::exp(rng.Uniform(log_lo, log_hi));
    const int w = static_cast<int>(std::lround(std::sqrt(target * ratio)));
    const int h = static_cast<int>(std::lround(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= W && h <= H) {
      const int y = static_cast<int>(rng.Below(H - h + 1));
      const int x = static_cast<int>(rng.Below(W - w + 1));
      return {y, x, h, w};
    }
  }
  // Fallback: whole image center crop with the ratio clamped into range.
  const double in_ratio = static_cast<double>(W) / H;
  int w = W, h = H;
  if (in_ratio < o.ratio_min) {
    h = static_cast<int>(std::lround(w / o.ratio_min));
  } else if (in_ratio > o.ratio_max) {
    w = static_cast<int>(std::lround(h * o.ratio_max));
  }
  return {(H - h) / 2, (W - w) / 2, h, w};
}

int DecodeMinSide(const TransformOptions& o, int size, bool train) {
  if ((train ? o.train_decode : o.eval_decode) == "full") return 0;
  if (train) return size;
  return static_cast<int>(std::floor(size / o.crop_pct));
}

namespace {

Image Photometric(Image img, const TransformOptions& o, Rng& rng) {
  if (o.hflip > 0 && rng.Bernoulli(o.hflip)) img = HFlip(img);
  if (o.color_jitter > 0) img = ColorJitter(img, o.color_jitter, rng);
  if (o.randaugment_n > 0) img = RandAugment(img, o.randaugment_n, o.randaugment_m, rng);
  if (o.random_erasing > 0) img = RandomErasing(img, o.random_erasing, rng);
  return img;
}

}  // namespace

std::string TrainCropMode(int img_h, int img_w, const TransformOptions& o) {
  if (o.train_crop != "auto") return o.train_crop;
  return std::max(img_h, img_w) <= 64 ? "pad_crop" : "rrc";
}

Image TrainTransform(const Image& img, int size, const TransformOptions& o, Rng& rng) {
  const Interp interp = ParseInterp(o.interpolation).value_or(Interp::kBilinear);
  const std::string mode = TrainCropMode(img.h, img.w, o);
  Image out;
  if (mode == "rrc") {
    const CropBox b = SampleRandomResizedCrop(img.h, img.w, o, rng);
    return TrainTransformOfBox(img, b, size, o, rng);
  }
  if (mode == "pad_crop") {
    const Image base = (img.h == size && img.w == size) ? img : Resize(img, size, size, interp);
    const int y = static_cast<int>(rng.Below(2 * o.pad + 1));
    const int x = static_cast<int>(rng.Below(2 * o.pad + 1));
    out = o.pad == 0 ? base : PadCrop(base, o.pad, y, x, size, size);
  } else {
    out = (img.h == size && img.w == size) ? img : Resize(img, size, size, interp);
  }
  return Photometric(std::move(out), o, rng);
}

Image TrainTransformOfBox(const Image& img, const CropBox& box, int size, const TransformOptions& o, Rng& rng) {
  const Interp interp = ParseInterp(o.interpolation).value_or(Interp::kBilinear);
  return Photometric(ResizedCrop(img, box.y, box.x, box.h, box.w, size, size, interp), o, rng);
}

Image EvalTransform(const Image& img, int size, const TransformOptions& o) {
  if (img.h == size && img.w == size) return img;
  const Interp interp = ParseInterp(o.interpolation).value_or(Interp::kBilinear);
  const int scale_size = static_cast<int>(std::floor(size / o.crop_pct));
  return CenterCrop(ResizeShorter(img, scale_size, interp), size, size);
}

void ResolveNormalization(const TransformOptions& o, int channels, std::vector<float>* mean,
                          std::vector<float>* std) {
  if (!o.mean.empty() && static_cast<int>(o.mean.size()) == channels) {
    *mean = o.mean;
    *std = o.std;
  } else if (!o.mean.empty() && channels == 1) {
    // Gray model with RGB statistics: average them.
    float m = 0, s = 0;
    for (size_t i = 0; i < o.mean.size(); ++i) { m += o.mean[i]; s += o.std[i]; }
    *mean = {m / o.mean.size()};
    *std = {s / o.std.size()};
  } else if (channels == 3) {
    *mean = {0.485f, 0.456f, 0.406f};
    *std = {0.229f, 0.224f, 0.225f};
  } else {
    *mean = std::vector<float>(channels, 0.5f);
    *std = std::vector<float>(channels, 0.5f);
  }
}

}  // namespace cf::data
