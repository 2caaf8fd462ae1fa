// Image bytes from datasets and downloads: DecodeImage, which sniffs JPEG, PNG or WebP and decodes
// it. The input's size picks the request (RGB or gray; full size, or JPEG's DCT scaling towards a
// 24-pixel side), so every seed is a real image file.
// Checked on every input: a decoded image has the channels asked for, a positive size no larger
// than kMaxImagePixels, and exactly h*w*c pixels; the limit itself is checked before allocation
// by -malloc_limit_mb (see README.md). Then DecodeImageRegion (the Loader's path for a training
// crop) on a region picked from the input's bytes: when the whole decode succeeded, the region's
// decode succeeds too and equals the crop of the whole image, pixel for pixel.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "convforever/data/decode.h"
#include "convforever/data/image_ops.h"
#include "convforever/fuzz/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const int channels = (size & 1) ? 1 : 3;
  const int min_side = (size & 2) ? 24 : 0;
  auto img = cf::data::DecodeImage(bytes, channels, min_side, "fuzz.img");
  if (!img.ok()) return 0;
  CF_FUZZ_FAIL_IF(img->c != channels || img->h <= 0 || img->w <= 0);
  CF_FUZZ_FAIL_IF(static_cast<int64_t>(img->h) * img->w > cf::data::kMaxImagePixels);
  CF_FUZZ_FAIL_IF(img->pixels.size() != static_cast<size_t>(img->h) * img->w * img->c);
  auto header = cf::data::DecodedImageSize(bytes, min_side, "fuzz.img");
  CF_FUZZ_FAIL_IF(!header.ok() || header->h != img->h || header->w != img->w);
  // A region inside the image, picked by a few of the input's bytes.
  const uint32_t a = data[size / 2], b = data[size - 1], c = data[size / 3], d = data[size / 5];
  const int h = 1 + static_cast<int>((a * 131 + c) % img->h), w = 1 + static_cast<int>((b * 137 + d) % img->w);
  const int y = static_cast<int>((c * 7 + a) % (img->h - h + 1)), x = static_cast<int>((d * 11 + b) % (img->w - w + 1));
  auto region = cf::data::DecodeImageRegion(bytes, channels, min_side, y, x, h, w, "fuzz.img");
  CF_FUZZ_FAIL_IF(!region.ok());
  CF_FUZZ_FAIL_IF(region->pixels != cf::data::Crop(*img, y, x, h, w).pixels);
  return 0;
}
