#include "convforever/data/decode.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <webp/encode.h>
#include <zlib.h>

#include "convforever/data/test_util.h"

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
