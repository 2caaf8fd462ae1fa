// Photometric and affine augmentation kernels on uint8 HWC images: color jitter, RandAugment and
// random erasing. Pure: each takes an image and an Rng (see rng.h) and returns a new image, so a
// sample's augmentation depends only on the Rng's seed. Thread-safe.
//
// RandAugment follows Cubuk et al., "RandAugment: Practical automated data augmentation with a
// reduced search space" (2019) in timm's variant (`rand-m{M}-n{N}`): N ops drawn uniformly from
// the list below, each applied with probability 0.5 at magnitude M (of 10), signs of signed ops
// random. Random erasing follows Zhong et al. (2017) in timm's per-pixel mode, but fills with
// uniform random bytes because images are still uint8 here (timm fills the normalized tensor
// with N(0, 1)).
#ifndef CONVFOREVER_DATA_AUGMENT_H_
#define CONVFOREVER_DATA_AUGMENT_H_

#include <string>
#include <vector>

#include "convforever/data/image.h"
#include "convforever/data/rng.h"

namespace cf::data {

// out = degenerate + factor * (img - degenerate), clamped (PIL ImageEnhance semantics).
Image Blend(const Image& img, const Image& degenerate, double factor);
Image AdjustBrightness(const Image& img, double factor);
Image AdjustContrast(const Image& img, double factor);
Image AdjustSaturation(const Image& img, double factor);
Image AdjustSharpness(const Image& img, double factor);
Image AutoContrast(const Image& img);
Image Equalize(const Image& img);
Image Invert(const Image& img);
Image Posterize(const Image& img, int bits);
Image Solarize(const Image& img, int threshold);
Image SolarizeAdd(const Image& img, int add, int threshold = 128);
// Affine warp [[a, b, c], [d, e, f]] mapping output to input coordinates, nearest, fill 128.
Image Affine(const Image& img, const double m[6]);

// torchvision ColorJitter(brightness=s, contrast=s, saturation=s) with ops in random order.
Image ColorJitter(const Image& img, double strength, Rng& rng);
// Names of the RandAugment ops, in the order they are drawn from.
const std::vector<std::string>& RandAugmentOps();
Image ApplyRandAugmentOp(const Image& img, const std::string& op, double magnitude, Rng& rng);
Image RandAugment(const Image& img, int n, int m, Rng& rng);
// With probability p erases one rectangle of area fraction in [0.02, 1/3] and aspect ratio in
// [0.3, 3.3] (log-uniform), timm's defaults; up to 10 attempts to fit it.
Image RandomErasing(const Image& img, double p, Rng& rng);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_AUGMENT_H_
