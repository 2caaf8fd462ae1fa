// Per-sample train and eval pipelines, composed from the pure kernels in image_ops.h and
// augment.h: uint8 image in, uint8 image of exactly (size, size, channels) out.
//
// Train ("rrc"): RandomResizedCrop(size, scale, ratio) as torchvision (10 attempts, then a
// center crop with the ratio clamped), horizontal flip, optional color jitter, RandAugment,
// random erasing. Train ("pad_crop", for small images such as 28x28 or 32x32): resize to `size`
// if needed, zero-pad `pad` pixels and take a random size x size crop, then the same flip/jitter/
// RandAugment/erasing. Eval: resize the shorter side to floor(size / crop_pct), center crop
// `size` (timm's eval transform). "auto" picks pad_crop when the image's longer side is <= 64.
// Randomness comes only from the Rng argument. Thread-safe.
#ifndef CONVFOREVER_DATA_TRANSFORMS_H_
#define CONVFOREVER_DATA_TRANSFORMS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "convforever/data/image.h"
#include "convforever/data/rng.h"

namespace cf::data {

struct TransformOptions {
  std::string train_crop = "auto";  // auto | rrc | pad_crop | none (resize only)
  int pad = 4;                      // pad_crop padding
  double scale_min = 0.08, scale_max = 1.0;
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  std::string interpolation = "bilinear";  // bilinear | bicubic
  double hflip = 0.5;
  double color_jitter = 0.0;  // 0 = off; else brightness = contrast = saturation = this
  int randaugment_n = 0;      // 0 = off
  int randaugment_m = 9;
  double random_erasing = 0.0;  // probability
  double crop_pct = 0.875;      // eval: resize to size / crop_pct, center crop size
  // Normalization per channel, applied when the batch is assembled. Empty: ImageNet's
  // (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) for 3 channels, 0.5 / 0.5 for 1 channel.
  std::vector<float> mean, std;
  bool channels_last = false;  // batch memory format
  // JPEG decode size (decode.h), per split: "full" decodes at full size, as torchvision's
  // ImageFolder, timm and transformers do; "draft" at the largest 1/2, 1/4, 1/8 DCT reduction that
  // keeps both sides >= DecodeMinSide's side (PIL's Image.draft rule, so a PIL pipeline can do the
  // same), 2-8x cheaper on images at least twice that size. Both default to "full": then the
  // pixels a model sees are those of a PIL/torchvision pipeline (the same decoded bytes, the same
  // antialiased resize), in training and at evaluation, whatever the image size; "draft" changes
  // them slightly for large images (and upsamples small random crops from a reduced decode).
  std::string train_decode = "full";
  std::string eval_decode = "full";
};

absl::Status ValidateTransformOptions(const TransformOptions& o);

// torchvision RandomResizedCrop.get_params: (y, x, h, w) of the crop.
struct CropBox { int y, x, h, w; };
CropBox SampleRandomResizedCrop(int img_h, int img_w, const TransformOptions& o, Rng& rng);

// The `min_side` DecodeImage gets: 0 (full size) where the split's *_decode is "full", else the
// shorter side the pipeline needs (train: size; eval: floor(size / crop_pct)).
int DecodeMinSide(const TransformOptions& o, int size, bool train);

Image TrainTransform(const Image& img, int size, const TransformOptions& o, Rng& rng);

// The crop TrainTransform applies to an img_h x img_w image: "rrc", "pad_crop" or "none".
std::string TrainCropMode(int img_h, int img_w, const TransformOptions& o);

// The rest of TrainTransform's RandomResizedCrop once its box is drawn (`rng` has drawn it): `img`
// holds the box's pixels at `box` (the whole image, or a part of it around the box, such as
// decode.h's DecodeImageBand gives). Returns exactly what TrainTransform gives for the whole
// image, whose resampling never reads outside the box; so the Loader decodes only the box.
Image TrainTransformOfBox(const Image& img, const CropBox& box, int size, const TransformOptions& o, Rng& rng);
Image EvalTransform(const Image& img, int size, const TransformOptions& o);

// Mean/std actually used for `channels` (fills the defaults).
void ResolveNormalization(const TransformOptions& o, int channels, std::vector<float>* mean,
                          std::vector<float>* std);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_TRANSFORMS_H_
