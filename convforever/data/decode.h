// Decoding JPEG (libjpeg-turbo), PNG (libpng) and WebP (libwebp) bytes into a uint8 HWC Image.
//
// The format is sniffed from the magic bytes, not the file name. `channels` (1 or 3) is what the
// model needs: decoders convert gray <-> RGB themselves (alpha is dropped). For JPEG, when
// `min_side > 0` and the image is at least twice min_side on both sides, libjpeg-turbo's
// DCT-domain scaling decodes straight to 1/2, 1/4 or 1/8 size (JpegReduction), which is several
// times cheaper than decoding full size and resizing. The rule is PIL's
// Image.draft("RGB", (min_side, min_side)), so a PIL pipeline can do exactly the same work: the
// largest power-of-two reduction d with floor(W / min_side) >= d and floor(H / min_side) >= d, to
// ceil(W / d) x ceil(H / d) pixels. Corrupt or truncated data gives an
// InvalidArgument/DataLoss status naming `what` (a path or URL). Thread-safe.
//
// Sizes come from the file's header, which anyone can write: an image whose header announces more
// than kMaxImagePixels pixels (before any DCT scaling) is an InvalidArgument error, returned
// before anything of that size is allocated.
#ifndef CONVFOREVER_DATA_DECODE_H_
#define CONVFOREVER_DATA_DECODE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "convforever/data/image.h"

namespace cf::data {

// 8192 x 8192: far beyond any training image, and at most 192 MiB of RGB pixels per decode.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

enum class ImageFormat { kUnknown, kJpeg, kPng, kWebp };
ImageFormat SniffFormat(std::string_view bytes);

absl::StatusOr<Image> DecodeImage(std::string_view bytes, int channels, int min_side,
                                  const std::string& what);

// The (h, w) DecodeImage(bytes, *, min_side, what) returns, read from the header alone (for JPEG
// after the DCT reduction). Header errors are those DecodeImage gives.
struct ImageSize { int h = 0, w = 0; };
absl::StatusOr<ImageSize> DecodedImageSize(std::string_view bytes, int min_side, const std::string& what);

// Crop(DecodeImage(bytes, channels, min_side, what), y, x, h, w), pixel for pixel, for less for a
// JPEG: libjpeg stops after the region's last row, skips the rows above it after entropy decoding
// them (that part cannot be skipped), and transforms only the columns around it (IDCT, upsampling,
// color conversion). On 500x375 photos, RandomResizedCrop(224)'s boxes took 24% less decode time
// than whole pictures. PNG, WebP, progressive JPEG, and JPEG data that does not end with the
// end-of-image marker (a cut file, which must fail as the whole decode fails) are decoded whole
// and cropped. Corrupt entropy-coded data below the region goes unnoticed, where the whole decode
// would reject the image. A region not inside the decoded image is an InvalidArgument error.
absl::StatusOr<Image> DecodeImageRegion(std::string_view bytes, int channels, int min_side, int y, int x,
                                        int h, int w, const std::string& what);

// DecodeImageRegion without its final copy: the region is the h x w box at (y, x) of `image`,
// which holds for a JPEG decoded by region just the region's rows (y = 0) and the columns decoded
// around it, else the whole decoded image. The Loader resamples the region straight from it.
struct ImageBand {
  Image image;
  int y = 0, x = 0;
};
absl::StatusOr<ImageBand> DecodeImageBand(std::string_view bytes, int channels, int min_side, int y, int x,
                                          int h, int w, const std::string& what);

// The JPEG reduction (1, 2, 4 or 8) DecodeImage uses for a W x H image and `min_side` (<= 0: 1).
int JpegReduction(int w, int h, int min_side);

// Encoders, used by tests and the benchmark to make fixtures (quality 0-100).
absl::StatusOr<std::string> EncodeJpeg(const Image& img, int quality);
absl::StatusOr<std::string> EncodePng(const Image& img);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_DECODE_H_
