// Image bytes from datasets and downloads: DecodeImage, which sniffs JPEG, PNG or WebP and decodes
// it. The input's size picks the request (RGB or gray; full size, or JPEG's DCT scaling towards a
// 24-pixel side), so every seed is a real image file.
// Checked on every input: a decoded image has the channels asked for, a positive size no larger
// than kMaxImagePixels, and exactly h*w*c pixels; the limit itself is checked before allocation
// by -malloc_limit_mb (see README.md).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "convforever/data/decode.h"
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
  return 0;
}
