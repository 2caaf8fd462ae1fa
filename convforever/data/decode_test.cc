#include "convforever/data/decode.h"

#include <fstream>
#include <sstream>

#include <turbojpeg.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <webp/encode.h>
#include <zlib.h>

#include "convforever/data/image_ops.h"
#include "convforever/data/rng.h"
#include "convforever/data/test_util.h"
#include "convforever/data/transforms.h"

namespace cf::data {
namespace {

Image Smooth(int h, int w) {
  Image img(h, w, 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      img.at(y, x, 0) = static_cast<uint8_t>(x * 255 / w);
      img.at(y, x, 1) = static_cast<uint8_t>(y * 255 / h);
      img.at(y, x, 2) = 128;
    }
  }
  return img;
}

TEST(DecodeTest, PngRoundTripIsExactAndGrayConverts) {
  const Image img = testing::PatternImage(13, 17, 3, 4);
  auto png = EncodePng(img);
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(SniffFormat(*png), ImageFormat::kPng);
  auto back = DecodeImage(*png, 3, 0, "mem.png");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->pixels, img.pixels);
  auto gray = DecodeImage(*png, 1, 0, "mem.png");
  ASSERT_TRUE(gray.ok());
  EXPECT_EQ(gray->c, 1);
}

TEST(DecodeTest, JpegDecodesCloseToSourceAndDctScales) {
  const Image img = Smooth(400, 640);
  auto jpg = EncodeJpeg(img, 95);
  ASSERT_TRUE(jpg.ok());
  auto full = DecodeImage(*jpg, 3, 0, "mem.jpg");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->h, 400);
  EXPECT_EQ(full->w, 640);
  EXPECT_NEAR(full->at(200, 320, 0), img.at(200, 320, 0), 6);
  // Target 96: 1/4 scale gives 100x160 (>= 96); 1/8 would give 50.
  auto scaled = DecodeImage(*jpg, 3, 96, "mem.jpg");
  ASSERT_TRUE(scaled.ok());
  EXPECT_EQ(scaled->h, 100);
  EXPECT_EQ(scaled->w, 160);
  // Never scaled below the target.
  auto kept = DecodeImage(*jpg, 3, 300, "mem.jpg");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->h, 400);
  auto gray = DecodeImage(*jpg, 1, 0, "mem.jpg");
  ASSERT_TRUE(gray.ok());
  EXPECT_EQ(gray->c, 1);
}

nlohmann::json LoadDraftGolden() {
  std::ifstream in(testing::TestdataPath("jpeg_draft_golden.json"));
  EXPECT_TRUE(in) << testing::TestdataPath("jpeg_draft_golden.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// The reduction rule is PIL's Image.draft("RGB", (s, s)) (tools/golden/jpeg_draft_golden.py).
TEST(DecodeTest, JpegReductionIsPilDraft) {
  const nlohmann::json g = LoadDraftGolden();
  ASSERT_GE(g["sizes"].size(), 50u);
  for (const auto& c : g["sizes"]) {
    const int w = c["w"], h = c["h"], s = c["min_side"];
    const int d = JpegReduction(w, h, s);
    EXPECT_EQ((w + d - 1) / d, c["out_w"].get<int>()) << w << "x" << h << " min_side " << s;
    EXPECT_EQ((h + d - 1) / d, c["out_h"].get<int>()) << w << "x" << h << " min_side " << s;
  }
  EXPECT_EQ(JpegReduction(500, 375, 0), 1);
}

// Same bytes, same pixels as PIL (accurate integer DCT and fancy upsampling, both libjpeg-turbo's
// defaults), full size and DCT-scaled.
TEST(DecodeTest, JpegPixelsEqualPils) {
  const nlohmann::json g = LoadDraftGolden();
  const auto bytes = g["jpeg"].get<std::vector<uint8_t>>();
  const std::string jpg(bytes.begin(), bytes.end());
  for (const char* s : {"0", "16"}) {
    const auto& want = g["decoded"][s];
    auto got = DecodeImage(jpg, 3, std::atoi(s), "golden.jpg");
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->h, want["h"].get<int>()) << "min_side " << s;
    ASSERT_EQ(got->w, want["w"].get<int>()) << "min_side " << s;
    const auto rgb = want["rgb"].get<std::vector<int>>();
    int worst = 0;
    for (size_t i = 0; i < rgb.size(); ++i) worst = std::max(worst, std::abs(got->pixels[i] - rgb[i]));
    EXPECT_EQ(worst, 0) << "min_side " << s;
  }
}

TEST(DecodeTest, WebpDecodes) {
  const Image img = testing::PatternImage(10, 12, 3, 1);
  uint8_t* out = nullptr;
  const size_t n = WebPEncodeLosslessRGB(img.data(), img.w, img.h, img.w * 3, &out);
  ASSERT_GT(n, 0u);
  std::string bytes(reinterpret_cast<char*>(out), n);
  WebPFree(out);
  auto back = DecodeImage(bytes, 3, 0, "mem.webp");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->pixels, img.pixels);
}

TEST(DecodeTest, CorruptAndTruncatedImagesAreErrorsNamingTheSource) {
  const Image img = Smooth(64, 64);
  std::string jpg = *EncodeJpeg(img, 90);
  auto truncated = DecodeImage(jpg.substr(0, jpg.size() / 2), 3, 0, "cut.jpg");
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("cut.jpg"), std::string::npos);
  std::string png = *EncodePng(img);
  auto bad_png = DecodeImage(png.substr(0, png.size() / 2), 3, 0, "cut.png");
  ASSERT_FALSE(bad_png.ok());
  EXPECT_NE(bad_png.status().message().find("cut.png"), std::string::npos);
  auto garbage = DecodeImage("this is not an image", 3, 0, "junk.bin");
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.status().message().find("junk.bin"), std::string::npos);
  std::string header_only = jpg.substr(0, 2);
  EXPECT_FALSE(DecodeImage(header_only, 3, 0, "x.jpg").ok());
  EXPECT_FALSE(DecodeImage("RIFF\x10\0\0\0WEBPjunkjunk", 3, 0, "x.webp").ok());
  // A failure leaves this thread's decoder usable for the next image.
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(DecodeImage(jpg.substr(0, jpg.size() / 2), 3, 0, "cut.jpg").ok());
    auto good = DecodeImage(jpg, 3, 0, "good.jpg");
    ASSERT_TRUE(good.ok()) << good.status();
  }
}

// A photo-like picture: smooth gradients plus texture, so every DCT block and chroma sample
// differs from its neighbours and an off-by-one column or row shows.
Image Textured(int h, int w, int seed) {
  Image img(h, w, 3);
  Rng rng(seed);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c) {
        const int v = (x * (3 + c) + y * (5 - c)) % 256 + static_cast<int>(rng.Below(40)) - 20;
        img.at(y, x, c) = static_cast<uint8_t>(std::clamp(v, 0, 255));
      }
    }
  }
  return img;
}

// TurboJPEG's encoder with any chroma subsampling, baseline or progressive.
std::string EncodeWith(const Image& img, int subsamp, bool progressive) {
  tjhandle tj = tjInitCompress();
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  EXPECT_EQ(tjCompress2(tj, img.data(), img.w, 0, img.h, TJPF_RGB, &buf, &size, subsamp, 85,
                        progressive ? TJFLAG_PROGRESSIVE : 0), 0) << tjGetErrorStr2(tj);
  std::string out(reinterpret_cast<char*>(buf), size);
  tjFree(buf);
  tjDestroy(tj);
  return out;
}

// The region decode equals cropping the whole decode, pixel for pixel: every chroma subsampling
// (whose fancy upsampling reads neighbouring columns and rows), baseline and progressive, every DCT
// reduction, gray and RGB output, regions touching each edge, single pixels and the whole image.
TEST(DecodeTest, RegionEqualsTheCropOfTheWholeDecode) {
  const std::vector<std::pair<const char*, int>> subsamplings = {
      {"444", TJSAMP_444}, {"422", TJSAMP_422}, {"420", TJSAMP_420},
      {"440", TJSAMP_440}, {"411", TJSAMP_411}, {"gray", TJSAMP_GRAY}};
  int checked = 0;
  for (const auto& [name, subsamp] : subsamplings) {
    for (bool progressive : {false, true}) {
      const Image src = Textured(237, 311, subsamp * 2 + progressive);
      const std::string jpg = EncodeWith(src, subsamp, progressive);
      for (int min_side : {0, 100, 60, 30}) {  // reductions 1, 2, 4, 8
        for (int channels : {3, 1}) {
          auto whole = DecodeImage(jpg, channels, min_side, "whole.jpg");
          ASSERT_TRUE(whole.ok()) << whole.status();
          auto size = DecodedImageSize(jpg, min_side, "whole.jpg");
          ASSERT_TRUE(size.ok()) << size.status();
          ASSERT_EQ(size->h, whole->h);
          ASSERT_EQ(size->w, whole->w);
          const int H = whole->h, W = whole->w;
          std::vector<CropBox> boxes = {{0, 0, H, W}, {0, 0, 1, 1}, {H - 1, W - 1, 1, 1},
                                        {0, W - 1, H, 1}, {H - 1, 0, 1, W}, {1, 1, H - 2, W - 2}};
          Rng rng(checked + 7);
          for (int i = 0; i < 12; ++i) {
            const int h = static_cast<int>(rng.IntIn(1, H)), w = static_cast<int>(rng.IntIn(1, W));
            boxes.push_back({static_cast<int>(rng.Below(H - h + 1)), static_cast<int>(rng.Below(W - w + 1)), h, w});
          }
          for (const CropBox& b : boxes) {
            auto region = DecodeImageRegion(jpg, channels, min_side, b.y, b.x, b.h, b.w, "region.jpg");
            ASSERT_TRUE(region.ok()) << region.status();
            const Image want = Crop(*whole, b.y, b.x, b.h, b.w);
            ASSERT_EQ(region->h, want.h);
            ASSERT_EQ(region->w, want.w);
            ASSERT_EQ(region->c, want.c);
            int differing = 0;
            for (size_t k = 0; k < want.pixels.size(); ++k) differing += region->pixels[k] != want.pixels[k];
            EXPECT_EQ(differing, 0) << name << (progressive ? " progressive" : " baseline") << " min_side "
                                    << min_side << " channels " << channels << " region " << b.w << "x" << b.h
                                    << " at (" << b.x << ", " << b.y << ") of " << W << "x" << H;
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 6 * 2 * 4 * 2 * 18);
}

// Bad regions and bad data: errors naming the file; a file cut short fails even when the region
// lies in the part that is there (it takes the whole-decode path), as DecodeImage fails.
TEST(DecodeTest, RegionErrorsNameTheSource) {
  const std::string jpg = *EncodeJpeg(Smooth(64, 48), 90);
  for (const CropBox& b : std::vector<CropBox>{{-1, 0, 4, 4}, {0, 0, 65, 4}, {0, 45, 4, 4}, {0, 0, 0, 4}}) {
    auto region = DecodeImageRegion(jpg, 3, 0, b.y, b.x, b.h, b.w, "small.jpg");
    ASSERT_FALSE(region.ok());
    EXPECT_EQ(region.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(region.status().message().find("small.jpg"), std::string::npos) << region.status();
  }
  const std::string cut = jpg.substr(0, jpg.size() * 3 / 4);
  auto top = DecodeImageRegion(cut, 3, 0, 0, 0, 4, 4, "cut.jpg");
  ASSERT_FALSE(top.ok());
  EXPECT_NE(top.status().message().find("cut.jpg"), std::string::npos) << top.status();
  // Corrupt entropy-coded data inside the region, with the end marker intact.
  std::string corrupt = jpg;
  const size_t sos = corrupt.find("\xFF\xDA");
  ASSERT_NE(sos, std::string::npos);
  for (size_t k = sos + 20; k < sos + 60; ++k) corrupt[k] = '\xFF';
  auto bad = DecodeImageRegion(corrupt, 3, 0, 0, 0, 64, 48, "corrupt.jpg");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("corrupt.jpg"), std::string::npos) << bad.status();
  EXPECT_FALSE(DecodeImageRegion("not an image", 3, 0, 0, 0, 1, 1, "junk.bin").ok());
  // PNG takes the whole-decode path.
  const Image img = testing::PatternImage(13, 17, 3, 4);
  auto png = DecodeImageRegion(*EncodePng(img), 3, 0, 2, 3, 5, 7, "p.png");
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(png->pixels, Crop(img, 2, 3, 5, 7).pixels);
}

// A JPEG without its quantization tables fails, whatever the thread decoded before: a decoder
// kept per thread would fill them in from the previous image (so the same file was skipped or
// decoded with another file's tables, depending on which worker got it).
TEST(DecodeTest, NoStateCarriesOverFromThePreviousImage) {
  const std::string jpg = *EncodeJpeg(Smooth(40, 56), 90);
  std::string no_tables;
  for (size_t i = 0; i < jpg.size();) {
    if (i + 3 < jpg.size() && jpg.compare(i, 2, "\xFF\xDB") == 0) {
      i += 2 + ((static_cast<uint8_t>(jpg[i + 2]) << 8) | static_cast<uint8_t>(jpg[i + 3]));
      continue;
    }
    no_tables += jpg[i++];
  }
  ASSERT_LT(no_tables.size(), jpg.size());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(DecodeImage(jpg, 3, 0, "good.jpg").ok());
    auto whole = DecodeImage(no_tables, 3, 0, "no_tables.jpg");
    ASSERT_FALSE(whole.ok());
    EXPECT_NE(whole.status().message().find("no_tables.jpg"), std::string::npos) << whole.status();
    ASSERT_TRUE(DecodeImageRegion(jpg, 3, 0, 4, 4, 8, 8, "good.jpg").ok());
    EXPECT_FALSE(DecodeImageRegion(no_tables, 3, 0, 4, 4, 8, 8, "no_tables.jpg").ok());
  }
}

// A small real JPEG whose SOF0 header announces w x h instead (height, then width, big-endian).
std::string JpegClaiming(int w, int h) {
  std::string jpg = *EncodeJpeg(Smooth(16, 16), 90);
  const size_t sof = jpg.find("\xFF\xC0");
  EXPECT_NE(sof, std::string::npos);
  jpg[sof + 5] = static_cast<char>(h >> 8), jpg[sof + 6] = static_cast<char>(h & 0xFF);
  jpg[sof + 7] = static_cast<char>(w >> 8), jpg[sof + 8] = static_cast<char>(w & 0xFF);
  return jpg;
}

std::string BigEndian32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// A PNG signature, an IHDR announcing w x h RGB, and the start of an IDAT: all libpng reads
// before it reports the size.
std::string PngClaiming(uint32_t w, uint32_t h) {
  std::string ihdr = "IHDR" + BigEndian32(w) + BigEndian32(h) + std::string("\x08\x02\0\0\0", 5);
  const uint32_t crc = crc32(0, reinterpret_cast<const Bytef*>(ihdr.data()), ihdr.size());
  return std::string("\x89PNG\r\n\x1a\n", 8) + BigEndian32(13) + ihdr + BigEndian32(crc) + BigEndian32(64) +
         "IDAT" + std::string(64, '\0');
}

// A lossless WebP header (VP8L) announcing w x h, both at most 16384.
std::string WebpClaiming(uint32_t w, uint32_t h) {
  const uint32_t bits = (w - 1) | ((h - 1) << 14);
  std::string vp8l = "VP8L" + std::string("\x0e\0\0\0", 4) + "\x2f" +
                     std::string({static_cast<char>(bits), static_cast<char>(bits >> 8),
                                  static_cast<char>(bits >> 16), static_cast<char>(bits >> 24)}) +
                     std::string(9, '\0');
  return "RIFF" + std::string({static_cast<char>(4 + vp8l.size()), 0, 0, 0}) + "WEBP" + vp8l;
}

// Headers are untrusted: one announcing more than kMaxImagePixels is an error before the pixels
// are allocated (16384 x 16384 RGB would be 768 MiB; WebP had no limit at all, and JPEG and PNG
// allowed exactly this size). 65500 is libjpeg's own largest side.
TEST(DecodeTest, HeadersAnnouncingHugeImagesAreRejectedBeforeAllocating) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"huge.jpg", JpegClaiming(16384, 16384)}, {"wide.jpg", JpegClaiming(65500, 65500)},
      {"huge.png", PngClaiming(16384, 16384)},  {"wide.png", PngClaiming(65535, 65535)},
      {"huge.webp", WebpClaiming(16384, 16384)}, {"tall.webp", WebpClaiming(8193, 16384)},
  };
  for (const auto& [what, bytes] : cases) {
    auto img = DecodeImage(bytes, 3, 0, what);
    ASSERT_FALSE(img.ok()) << what;
    EXPECT_EQ(img.status().code(), absl::StatusCode::kInvalidArgument) << img.status();
    EXPECT_NE(img.status().message().find(what), std::string::npos) << img.status();
    EXPECT_NE(img.status().message().find("kMaxImagePixels"), std::string::npos) << img.status();
  }
  // The header parses at the limit: what fails then is the missing data, not the size.
  auto at_limit = DecodeImage(JpegClaiming(8192, 8192), 3, 0, "limit.jpg");
  ASSERT_FALSE(at_limit.ok());
  EXPECT_EQ(at_limit.status().message().find("kMaxImagePixels"), std::string::npos) << at_limit.status();
}

}  // namespace
}  // namespace cf::data
