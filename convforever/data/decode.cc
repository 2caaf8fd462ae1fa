#include "convforever/data/decode.h"

#include <csetjmp>
#include <cstdio>  // before jpeglib.h, which uses FILE
#include <jpeglib.h>
#include <png.h>
#include <turbojpeg.h>
#include <webp/decode.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/data/image_ops.h"

namespace cf::data {
namespace {

struct TjDeleter {
  void operator()(void* h) const { if (h) tjDestroy(h); }
};
using TjHandle = std::unique_ptr<void, TjDeleter>;

// One TurboJPEG handle per thread, for reading headers only (sizes do not depend on the tables a
// handle keeps from earlier images; pixels are decoded by DecodeJpegRows with a fresh libjpeg
// object): tjInitDecompress is not free. After a failure the handle is replaced: libjpeg-turbo
// 2.x can leave it unusable.
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

absl::Status CheckRegion(int img_h, int img_w, int y, int x, int h, int w, const std::string& what) {
  if (y < 0 || x < 0 || h <= 0 || w <= 0 || y + h > img_h || x + w > img_w) {
    return absl::InvalidArgumentError(absl::StrCat("region ", w, "x", h, " at (", x, ", ", y,
                                                   ") is not inside ", what, " (", img_w, "x", img_h, ")"));
  }
  return absl::OkStatus();
}

// The header's size and the DCT reduction DecodeImage applies for `min_side`.
struct JpegHeader {
  int w = 0, h = 0, denom = 1;
  int scaled_w() const { return (w + denom - 1) / denom; }
  int scaled_h() const { return (h + denom - 1) / denom; }
};

absl::StatusOr<JpegHeader> ReadJpegHeader(std::string_view bytes, int min_side, const std::string& what) {
  tjhandle tj = ThreadDecompressor();
  JpegHeader header;
  int subsamp = 0, colorspace = 0;
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
  if (tjDecompressHeader3(tj, src, bytes.size(), &header.w, &header.h, &subsamp, &colorspace) != 0) {
    const std::string why = tjGetErrorStr2(tj);
    ResetDecompressor();
    return absl::InvalidArgumentError(absl::StrCat("corrupt JPEG header in ", what, ": ", why));
  }
  RETURN_IF_ERROR(CheckSize("JPEG", what, header.w, header.h));
  header.denom = JpegReduction(header.w, header.h, min_side);
  return header;
}

// --- Decoding through libjpeg's own API, which (unlike TurboJPEG 2.1's) can decode a region ---

// libjpeg reports errors by calling error_exit, which must not return: it jumps back to the
// setjmp in DecodeJpegRows. Warnings (corrupt data that libjpeg would paper over) jump too.
struct JpegErrors {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void JpegErrorExit(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

void JpegEmitMessage(j_common_ptr cinfo, int level) {
  if (level < 0) JpegErrorExit(cinfo);  // a warning: corrupt or truncated data
}

enum class RowsResult { kDecoded, kFailed, kProgressive };  // kFailed: see `message`

// Decodes rows [y, y + h) and columns [x, x + w) of the JPEG, whose decoded size at 1/denom scale
// is full_h x full_w, into `band`: those rows, and the columns libjpeg decodes around the region
// (the region starts at column *band_x of the band). Only plain C data lives in this frame,
// so the longjmp from an error skips no destructor. kFailed comes with libjpeg's message in
// `message`. A fresh libjpeg object per image: one kept per thread keeps the quantization tables
// of the images it decoded before, so a file lacking a table would decode with a stale one or
// fail, depending on which thread had decoded what.
//
// A region: jpeg_crop_scanline starts the decoded columns at an iMCU boundary at or left of the
// requested one, and the fancy (triangle) chroma upsampling treats the first and last decoded
// columns as image edges; asking for kMargin more columns on each side keeps those edges out of
// the region. jpeg_skip_scanlines keeps the upsampler's context rows, so rows need no margin.
// decode_test compares every subsampling, scale and many regions with the whole decode, and the
// image_decode fuzzer any region of any input.
//
// Progressive JPEGs are decoded whole (a region gives kProgressive): when their scans leave
// coefficients unsent, libjpeg smooths each block with its neighbours' DC values up to two blocks
// away, which a cropped edge lacks. Their entropy decoding covers the whole image before the
// first row anyway, so a region would save less.
RowsResult DecodeJpegRows(const unsigned char* src, size_t size, int denom, int channels, int full_h,
                          int full_w, int y, int x, int h, int w, Image* band, int* band_x, char* message) {
  constexpr int kMargin = 2;
  jpeg_decompress_struct cinfo;
  JpegErrors errors;
  cinfo.err = jpeg_std_error(&errors.mgr);
  errors.mgr.error_exit = JpegErrorExit;
  errors.mgr.emit_message = JpegEmitMessage;
  errors.message[0] = '\0';
  if (setjmp(errors.jump)) {
    std::strcpy(message, errors.message);
    jpeg_destroy_decompress(&cinfo);
    return RowsResult::kFailed;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, src, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  const bool whole = h == full_h && w == full_w;
  if (cinfo.progressive_mode && !whole) {
    jpeg_destroy_decompress(&cinfo);
    return RowsResult::kProgressive;
  }
  cinfo.scale_num = 1;
  cinfo.scale_denom = static_cast<unsigned int>(denom);
  cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  // The accurate integer DCT and fancy upsampling (libjpeg-turbo's defaults, and PIL's): the same
  // pixels as PIL decodes, which the fast DCT would change by a few levels.
  cinfo.dct_method = JDCT_ISLOW;
  cinfo.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&cinfo);
  if (static_cast<int>(cinfo.output_height) != full_h || static_cast<int>(cinfo.output_width) != full_w ||
      cinfo.output_components != channels) {
    std::snprintf(message, JMSG_LENGTH_MAX, "libjpeg decodes %ux%ux%d, the header said %dx%dx%d",
                  cinfo.output_width, cinfo.output_height, cinfo.output_components, full_w, full_h, channels);
    jpeg_destroy_decompress(&cinfo);
    return RowsResult::kFailed;
  }
  JDIMENSION left = static_cast<JDIMENSION>(std::max(0, x - kMargin));
  JDIMENSION width = static_cast<JDIMENSION>(std::min(full_w, x + w + kMargin)) - left;
  if (width < cinfo.output_width) jpeg_crop_scanline(&cinfo, &left, &width);
  // The rows go straight into the band, as wide as libjpeg decodes them (a copy into a region-wide
  // image cost more than the columns it saved).
  band->h = h;
  band->w = static_cast<int>(width);
  band->c = channels;
  band->pixels.resize(static_cast<size_t>(h) * width * channels);
  *band_x = x - static_cast<int>(left);
  if (y > 0) jpeg_skip_scanlines(&cinfo, static_cast<JDIMENSION>(y));
  const size_t row_bytes = static_cast<size_t>(width) * channels;
  for (int r = 0; r < h; ++r) {
    JSAMPROW row = band->data() + r * row_bytes;
    if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
      std::snprintf(message, JMSG_LENGTH_MAX, "no scanline %d", y + r);
      jpeg_destroy_decompress(&cinfo);
      return RowsResult::kFailed;
    }
  }
  // After the last row, read on to the end-of-image marker as a whole decode does (a problem in
  // what follows is an error); a region higher up stops here, leaving the rows below undecoded.
  if (y + h == full_h) jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return RowsResult::kDecoded;
}

// A JPEG whose data stops before its end-of-image marker (a cut download) must fail as the whole
// decode fails, even when the region lies in the part that is there: such files take that path.
bool EndsWithEoi(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<uint8_t>(bytes[bytes.size() - 2]) == 0xFF &&
         static_cast<uint8_t>(bytes.back()) == 0xD9;
}

absl::StatusOr<Image> DecodeJpeg(std::string_view bytes, int channels, int min_side,
                                 const std::string& what) {
  ASSIGN_OR_RETURN(const JpegHeader header, ReadJpegHeader(bytes, min_side, what));
  const int sw = header.scaled_w(), sh = header.scaled_h();
  ImageBand band;
  char message[JMSG_LENGTH_MAX];
  if (DecodeJpegRows(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), header.denom, channels,
                     sh, sw, 0, 0, sh, sw, &band.image, &band.x, message) != RowsResult::kDecoded) {
    // libjpeg-turbo reports truncated data as a warning and fills the rest gray; any warning is a
    // failure here, so a half-gray picture never reaches training (and the decode stops at the
    // first one rather than decode the gray rest of a huge image).
    return absl::DataLossError(absl::StrCat("corrupt or truncated JPEG ", what, ": ", message));
  }
  return std::move(band.image);
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

absl::StatusOr<ImageSize> DecodedImageSize(std::string_view bytes, int min_side, const std::string& what) {
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
  switch (SniffFormat(bytes)) {
    case ImageFormat::kJpeg: {
      ASSIGN_OR_RETURN(const JpegHeader header, ReadJpegHeader(bytes, min_side, what));
      return ImageSize{header.scaled_h(), header.scaled_w()};
    }
    case ImageFormat::kPng: {
      png_image image;
      std::memset(&image, 0, sizeof(image));
      image.version = PNG_IMAGE_VERSION;
      if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
        return absl::InvalidArgumentError(absl::StrCat("corrupt PNG header in ", what, ": ", image.message));
      }
      png_image_free(&image);
      RETURN_IF_ERROR(CheckSize("PNG", what, image.width, image.height));
      return ImageSize{static_cast<int>(image.height), static_cast<int>(image.width)};
    }
    case ImageFormat::kWebp: {
      int w = 0, h = 0;
      if (!WebPGetInfo(src, bytes.size(), &w, &h)) {
        return absl::InvalidArgumentError(absl::StrCat("corrupt WebP header in ", what));
      }
      RETURN_IF_ERROR(CheckSize("WebP", what, w, h));
      return ImageSize{h, w};
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("not a JPEG, PNG or WebP image: ", what, " (",
                                                     bytes.size(), " bytes)"));
  }
}

absl::StatusOr<ImageBand> DecodeImageBand(std::string_view bytes, int channels, int min_side, int y, int x,
                                          int h, int w, const std::string& what) {
  if (channels != 1 && channels != 3) {
    return absl::InvalidArgumentError(absl::StrCat("channels must be 1 or 3, got ", channels));
  }
  if (SniffFormat(bytes) == ImageFormat::kJpeg && EndsWithEoi(bytes)) {
    ASSIGN_OR_RETURN(const JpegHeader header, ReadJpegHeader(bytes, min_side, what));
    RETURN_IF_ERROR(CheckRegion(header.scaled_h(), header.scaled_w(), y, x, h, w, what));
    ImageBand band;
    char message[JMSG_LENGTH_MAX];
    switch (DecodeJpegRows(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), header.denom,
                           channels, header.scaled_h(), header.scaled_w(), y, x, h, w, &band.image, &band.x,
                           message)) {
      case RowsResult::kDecoded: return band;
      case RowsResult::kFailed:
        return absl::DataLossError(absl::StrCat("corrupt or truncated JPEG ", what, ": ", message));
      case RowsResult::kProgressive: break;  // decoded whole below
    }
  }
  ImageBand band;
  ASSIGN_OR_RETURN(band.image, DecodeImage(bytes, channels, min_side, what));
  RETURN_IF_ERROR(CheckRegion(band.image.h, band.image.w, y, x, h, w, what));
  band.y = y;
  band.x = x;
  return band;
}

absl::StatusOr<Image> DecodeImageRegion(std::string_view bytes, int channels, int min_side, int y, int x,
                                        int h, int w, const std::string& what) {
  ASSIGN_OR_RETURN(ImageBand band, DecodeImageBand(bytes, channels, min_side, y, x, h, w, what));
  if (band.y == 0 && band.x == 0 && band.image.h == h && band.image.w == w) return std::move(band.image);
  return Crop(band.image, band.y, band.x, h, w);
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
