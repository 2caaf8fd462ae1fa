#include "convforever/data/batch.h"

#include <algorithm>
#include <cmath>
#include <exception>

#include "absl/strings/str_cat.h"

namespace cf::data {

absl::StatusOr<at::Tensor> AssembleImages(const std::vector<Image>& images, const std::vector<float>& mean,
                                          const std::vector<float>& std, bool channels_last, at::Tensor out) {
  if (images.empty()) return absl::InvalidArgumentError("cannot assemble an empty batch");
  const int h = images[0].h, w = images[0].w, c = images[0].c;
  if (static_cast<int>(mean.size()) != c || static_cast<int>(std.size()) != c) {
    return absl::InvalidArgumentError(absl::StrCat("normalization has ", mean.size(), " channels, images ", c));
  }
  for (const Image& im : images) {
    if (im.h != h || im.w != w || im.c != c) {
      return absl::InvalidArgumentError(absl::StrCat("batch images differ in size: ", h, "x", w, "x", c,
                                                     " vs ", im.h, "x", im.w, "x", im.c));
    }
  }
  std::vector<float> lut(static_cast<size_t>(c) * 256);
  for (int ch = 0; ch < c; ++ch) {
    for (int v = 0; v < 256; ++v) lut[ch * 256 + v] = (v / 255.0f - mean[ch]) / std[ch];
  }
  try {
    const int64_t B = images.size();
    const auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    if (!out.defined() || out.sizes() != at::IntArrayRef({B, c, h, w}) || !out.is_contiguous(fmt) ||
        out.scalar_type() != at::kFloat) {
      out = at::empty({B, c, h, w}, at::TensorOptions().dtype(at::kFloat), fmt);
    }
    float* dst = out.data_ptr<float>();
    const size_t plane = static_cast<size_t>(h) * w;
    for (int64_t b = 0; b < B; ++b) {
      const uint8_t* src = images[b].data();
      float* base = dst + b * plane * c;
      if (channels_last) {
        for (size_t p = 0; p < plane; ++p) {
          for (int ch = 0; ch < c; ++ch) base[p * c + ch] = lut[ch * 256 + src[p * c + ch]];
        }
      } else if (c == 3) {
        const float *l0 = &lut[0], *l1 = &lut[256], *l2 = &lut[512];
        float *d0 = base, *d1 = base + plane, *d2 = base + 2 * plane;
        for (size_t p = 0; p < plane; ++p) {
          d0[p] = l0[src[3 * p]];
          d1[p] = l1[src[3 * p + 1]];
          d2[p] = l2[src[3 * p + 2]];
        }
      } else {
        for (int ch = 0; ch < c; ++ch) {
          for (size_t p = 0; p < plane; ++p) base[ch * plane + p] = lut[ch * 256 + src[p * c + ch]];
        }
      }
    }
    return out;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("assembling a batch failed: ", e.what()));
  }
}

at::Tensor MixTargets(const at::Tensor& labels, int64_t num_classes, double lam, double smoothing) {
  const double off = smoothing / num_classes, on = 1.0 - smoothing + off;
  auto one_hot = [&](const at::Tensor& y) {
    return at::full({y.size(0), num_classes}, off, at::kFloat).scatter_(1, y.view({-1, 1}).to(at::kLong), on);
  };
  const at::Tensor y1 = one_hot(labels);
  if (lam >= 1.0) return y1;
  return y1 * lam + one_hot(labels.flip({0})) * (1.0 - lam);
}

MixDecision DrawMix(const MixOptions& o, int h, int w, Rng& rng) {
  MixDecision d;
  if (!o.enabled() || !rng.Bernoulli(o.prob)) return d;
  d.mixed = true;
  if (o.mixup_alpha > 0 && o.cutmix_alpha > 0) {
    d.cutmix = rng.Bernoulli(o.switch_prob);
  } else {
    d.cutmix = o.cutmix_alpha > 0;
  }
  const double alpha = d.cutmix ? o.cutmix_alpha : o.mixup_alpha;
  d.lam = rng.Beta(alpha, alpha);
  if (d.cutmix) {
    // timm rand_bbox: a box of side sqrt(1 - lam) of the image, centred anywhere, clipped.
    const double r = std::sqrt(1.0 - d.lam);
    const int cut_h = static_cast<int>(h * r), cut_w = static_cast<int>(w * r);
    const int cy = static_cast<int>(rng.Below(h)), cx = static_cast<int>(rng.Below(w));
    d.y0 = std::clamp(cy - cut_h / 2, 0, h);
    d.y1 = std::clamp(cy + cut_h / 2, 0, h);
    d.x0 = std::clamp(cx - cut_w / 2, 0, w);
    d.x1 = std::clamp(cx + cut_w / 2, 0, w);
    d.lam = 1.0 - static_cast<double>(d.y1 - d.y0) * (d.x1 - d.x0) / (static_cast<double>(h) * w);
  }
  return d;
}

absl::StatusOr<at::Tensor> ApplyMix(const MixDecision& d, at::Tensor& images, const at::Tensor& labels,
                                    int64_t num_classes, double smoothing) {
  try {
    if (d.mixed && d.cutmix) {
      if (d.y1 > d.y0 && d.x1 > d.x0) {
        using at::indexing::Slice;
        const at::Tensor partner = images.flip({0}).index({Slice(), Slice(), Slice(d.y0, d.y1), Slice(d.x0, d.x1)}).clone();
        images.index({Slice(), Slice(), Slice(d.y0, d.y1), Slice(d.x0, d.x1)}).copy_(partner);
      }
    } else if (d.mixed) {
      const at::Tensor partner = images.flip({0});  // a copy, taken before images change
      images.mul_(d.lam).add_(partner, 1.0 - d.lam);
    }
    return MixTargets(labels, num_classes, d.mixed ? d.lam : 1.0, smoothing);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("mixing a batch failed: ", e.what()));
  }
}

}  // namespace cf::data
