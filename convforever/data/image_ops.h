// Pure geometric and channel kernels on uint8 HWC images (see image.h): input image in, new
// image out, no state, no randomness (callers pass the random parameters), thread-safe.
//
// "bilinear" and "bicubic" resize as PIL and torchvision do, antialiased when downscaling
// (resample.h); "area" and "nearest" use OpenCV's cv::resize INTER_AREA / INTER_NEAREST. Coordinates are (y, x) of the top-left corner, sizes (h, w);
// crops are clamped to the image.
#ifndef CONVFOREVER_DATA_IMAGE_OPS_H_
#define CONVFOREVER_DATA_IMAGE_OPS_H_

#include <string>

#include "absl/status/statusor.h"
#include "convforever/data/image.h"

namespace cf::data {

enum class Interp { kBilinear, kBicubic, kArea, kNearest };
absl::StatusOr<Interp> ParseInterp(const std::string& name);

// Region [y, y+h) x [x, x+w) resized to (out_h, out_w). The region must lie inside the image.
Image ResizedCrop(const Image& img, int y, int x, int h, int w, int out_h, int out_w, Interp interp);
Image Resize(const Image& img, int out_h, int out_w, Interp interp);
// Scales so the shorter side becomes `size` (torchvision Resize(int)), rounding the other side
// down as torchvision does.
Image ResizeShorter(const Image& img, int size, Interp interp);
Image Crop(const Image& img, int y, int x, int h, int w);
// torchvision CenterCrop: top = round((H - h) / 2). Pads with zeros when the image is smaller.
Image CenterCrop(const Image& img, int h, int w);
// Zero-pads `pad` pixels on every side, then takes the (h, w) window at (y, x) of the padded
// image (torchvision RandomCrop(padding=pad) given its random offsets).
Image PadCrop(const Image& img, int pad, int y, int x, int h, int w);
Image HFlip(const Image& img);
// Gray <-> RGB: gray to RGB replicates the channel; RGB to gray uses ITU-R 601-2 luma
// (L = 0.299 R + 0.587 G + 0.114 B, as PIL's convert("L")).
Image ToChannels(const Image& img, int channels);
// Sets the region to `fill` bytes repeated (random erasing passes random bytes).
void FillRegion(Image* img, int y, int x, int h, int w, const std::vector<uint8_t>& fill);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_IMAGE_OPS_H_
