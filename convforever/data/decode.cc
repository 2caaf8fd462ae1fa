#include "convforever/data/decode.h"

#include <turbojpeg.h>
#include <png.h>
#include <webp/decode.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/data/image_ops.h"

namespace cf::data {
namespace {

struct TjDeleter {
  void operator()(void* h) const { if (h) tjDestroy(h); }
};
using TjHandle = std::unique_ptr<void, TjDeleter>;

// One decompressor per thread: tjInitDecompress is not free and handles are not shareable. After
// a failed decode the handle is replaced: libjpeg-turbo 2.x can leave it unusable.
thread_local TjHandle tls_decompressor;
tjhandle ThreadDecompressor() {
  if (!tls_decompressor) tls_decompressor.reset(tjInitDecompress());
  return tls_decompressor.get();
}
void ResetDecompressor() { tls_decompressor.reset(); }

// The header's width and height, checked before the pixels are allocated (see kMaxImagePixels).
absl::Status CheckSize(const char* format, const std::string& what, int64_t w, int64_t h) {
  if (w <= 0 || h <= 0 || w * h > kMaxImagePixels) {
    return absl::InvalidArgumentError(absl::StrCat(format, " ", what, " has size ", w, "x", h,
                                                   ": not in 1 to kMaxImagePixels (", kMaxImagePixels,
                                                   ") pixels"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Image> DecodeJpeg(std::string_view bytes, int channels, int min_side,
                                 const std::string& what) {
  tjhandle tj = ThreadDecompressor();
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
  if (tjDecompressHeader3(tj, src, bytes.size(), &w, &h, &subsamp, &colorspace) != 0) {
    const std::string why = tjGetErrorStr2(tj);
    ResetDecompressor();
    return absl::InvalidArgumentError(absl::StrCat("corrupt JPEG header in ", what, ": ", why));
  }
  RETURN_IF_ERROR(CheckSize("JPEG", what, w, h));
  const int denom = JpegReduction(w, h, min_side);
  const int sw = (w + denom - 1) / denom, sh = (h + denom - 1) / denom;
  const int pf = channels == 1 ? TJPF_GRAY : TJPF_RGB;
  Image out(sh, sw, channels == 1 ? 1 : 3);
  // The accurate integer DCT and fancy upsampling (libjpeg-turbo's defaults, and PIL's): the same
  // pixels as PIL decodes, which TJFLAG_FASTDCT would change by a few levels.
  if (tjDecompress2(tj, src, bytes.size(), out.data(), sw, 0, sh, pf,
                    TJFLAG_STOPONWARNING) != 0) {
    // libjpeg-turbo reports truncated data as a warning and fills the rest gray; treat any
    // problem as a bad image so a half-gray picture never reaches training (and stop at the
    // first one rather than decode the gray rest of a huge image).
    const std::string why = tjGetErrorStr2(tj);
    ResetDecompressor();
    return absl::DataLossError(absl::StrCat("corrupt or truncated JPEG ", what, ": ", why));
  }
  return out;
}

absl::StatusOr<Image> DecodePng(std::string_view bytes, int channels, const std::string& what) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    return absl::InvalidArgumentError(absl::StrCat("corrupt PNG header in ", what, ": ", image.message));
  }
  if (absl::Status size = CheckSize("PNG", what, image.width, image.height); !size.ok()) {
    png_image_free(&image);
    return size;
  }
  image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  Image out(image.height, image.width, channels == 1 ? 1 : 3);
  if (!png_image_finish_read(&image, nullptr, out.data(), 0, nullptr)) {
    std::string msg = image.message;
    png_image_free(&image);
    return absl::DataLossError(absl::StrCat("corrupt or truncated PNG ", what, ": ", msg));
  }
  return out;
}

absl::StatusOr<Image> DecodeWebp(std::string_view bytes, int channels, const std::string& what) {
  int w = 0, h = 0;
  const auto* src = reinterpret_cast<const uint8_t*>(bytes.data());
  if (!WebPGetInfo(src, bytes.size(), &w, &h)) {
    return absl::InvalidArgumentError(absl::StrCat("corrupt WebP header in ", what));
  }
  RETURN_IF_ERROR(CheckSize("WebP", what, w, h));
  Image rgb(h, w, 3);
  if (!WebPDecodeRGBInto(src, bytes.size(), rgb.data(), rgb.pixels.size(), w * 3)) {
    return absl::DataLossError(absl::StrCat("corrupt or truncated WebP ", what));
  }
  return channels == 1 ? ToChannels(rgb, 1) : rgb;
}

}  // namespace

int JpegReduction(int w, int h, int min_side) {
  if (min_side <= 0) return 1;
  for (int denom : {8, 4, 2}) {
    if (w / min_side >= denom && h / min_side >= denom) return denom;
  }
  return 1;
}

ImageFormat SniffFormat(std::string_view b) {
  if (b.size() >= 3 && static_cast<uint8_t>(b[0]) == 0xFF && static_cast<uint8_t>(b[1]) == 0xD8 &&
      static_cast<uint8_t>(b[2]) == 0xFF) {
    return ImageFormat::kJpeg;
  }
  if (b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::kPng;
  if (b.size() >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 && std::memcmp(b.data() + 8, "WEBP", 4) == 0) {
    return ImageFormat::kWebp;
  }
  return ImageFormat::kUnknown;
}

absl::StatusOr<Image> DecodeImage(std::string_view bytes, int channels, int min_side,
                                  const std::string& what) {
  if (channels != 1 && channels != 3) {
    return absl::InvalidArgumentError(absl::StrCat("channels must be 1 or 3, got ", channels));
  }
  switch (SniffFormat(bytes)) {
    case ImageFormat::kJpeg: return DecodeJpeg(bytes, channels, min_side, what);
    case ImageFormat::kPng: return DecodePng(bytes, channels, what);
    case ImageFormat::kWebp: return DecodeWebp(bytes, channels, what);
    default:
      return absl::InvalidArgumentError(absl::StrCat("not a JPEG, PNG or WebP image: ", what, " (",
                                                     bytes.size(), " bytes)"));
  }
}

absl::StatusOr<std::string> EncodeJpeg(const Image& img, int quality) {
  TjHandle tj(tjInitCompress());
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const int pf = img.c == 1 ? TJPF_GRAY : TJPF_RGB;
  const int ss = img.c == 1 ? TJSAMP_GRAY : TJSAMP_420;
  if (tjCompress2(tj.get(), img.data(), img.w, 0, img.h, pf, &buf, &size, ss, quality, 0) != 0) {
    return absl::InternalError(absl::StrCat("JPEG encode failed: ", tjGetErrorStr2(tj.get())));
  }
  std::string out(reinterpret_cast<char*>(buf), size);
  tjFree(buf);
  return out;
}

absl::StatusOr<std::string> EncodePng(const Image& img) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = img.w;
  image.height = img.h;
  image.format = img.c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, img.data(), 0, nullptr)) {
    return absl::InternalError(absl::StrCat("PNG encode failed: ", image.message));
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, img.data(), 0, nullptr)) {
    return absl::InternalError(absl::StrCat("PNG encode failed: ", image.message));
  }
  out.resize(size);
  return out;
}

}  // namespace cf::data
