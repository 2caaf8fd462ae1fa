// Kernels against PIL/torchvision golden values (tools/golden/data_golden.py) and invariants.
#include "convforever/data/image_ops.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "convforever/data/augment.h"
#include "convforever/data/test_util.h"
#include "convforever/data/transforms.h"

namespace cf::data {
namespace {

class GoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream in(testing::TestdataPath("data_golden.json"));
    ASSERT_TRUE(in) << testing::TestdataPath("data_golden.json");
    std::stringstream ss;
    ss << in.rdbuf();
    g_ = nlohmann::json::parse(ss.str());
    img_ = Image(g_["h"], g_["w"], 3);
    img_.pixels = g_["input"].get<std::vector<uint8_t>>();
  }
  // Max absolute difference between an image and a golden pixel list.
  static int MaxDiff(const Image& got, const nlohmann::json& want) {
    auto w = want.get<std::vector<int>>();
    EXPECT_EQ(got.pixels.size(), w.size());
    int worst = 0;
    for (size_t i = 0; i < std::min(w.size(), got.pixels.size()); ++i) worst = std::max(worst, std::abs(got.pixels[i] - w[i]));
    return worst;
  }
  nlohmann::json g_;
  Image img_;
};

TEST_F(GoldenTest, GeometryMatchesTorchvisionExactly) {
  EXPECT_EQ(MaxDiff(HFlip(img_), g_["hflip"]), 0);
  const auto& pc = g_["pad_crop"];
  EXPECT_EQ(MaxDiff(PadCrop(img_, pc["pad"], pc["y"], pc["x"], pc["h"], pc["w"]), pc["out"]), 0);
  const auto& cc = g_["center_crop"];
  EXPECT_EQ(MaxDiff(CenterCrop(img_, cc["h"], cc["w"]), cc["out"]), 0);
}

TEST_F(GoldenTest, GrayMatchesPilConvertL) { EXPECT_EQ(MaxDiff(ToChannels(img_, 1), g_["gray"]), 0); }

TEST_F(GoldenTest, EnhanceWithinOneOfPil) {
  EXPECT_LE(MaxDiff(AdjustBrightness(img_, g_["brightness"]["f"]), g_["brightness"]["out"]), 1);
  EXPECT_LE(MaxDiff(AdjustContrast(img_, g_["contrast"]["f"]), g_["contrast"]["out"]), 1);
  EXPECT_LE(MaxDiff(AdjustSaturation(img_, g_["saturation"]["f"]), g_["saturation"]["out"]), 1);
}

TEST_F(GoldenTest, ImageOpsMatchPil) {
  EXPECT_EQ(MaxDiff(Invert(img_), g_["invert"]), 0);
  EXPECT_EQ(MaxDiff(Posterize(img_, 3), g_["posterize3"]), 0);
  EXPECT_EQ(MaxDiff(Solarize(img_, 100), g_["solarize100"]), 0);
  EXPECT_LE(MaxDiff(AutoContrast(img_), g_["autocontrast"]), 1);
  EXPECT_EQ(MaxDiff(Equalize(img_), g_["equalize"]), 0);
}

TEST(ImageOpsTest, GrayRgbRoundTripAndResize) {
  Image g = testing::PatternImage(5, 7, 1, 3);
  Image rgb = ToChannels(g, 3);
  ASSERT_EQ(rgb.c, 3);
  EXPECT_EQ(rgb.at(2, 3, 0), g.at(2, 3, 0));
  EXPECT_EQ(rgb.at(2, 3, 2), g.at(2, 3, 0));
  EXPECT_EQ(ToChannels(rgb, 1).pixels, g.pixels);
  Image r = Resize(rgb, 10, 14, Interp::kBilinear);
  EXPECT_EQ(r.h, 10);
  EXPECT_EQ(r.w, 14);
  Image s = ResizeShorter(testing::PatternImage(300, 400, 3, 1), 150, Interp::kBilinear);
  EXPECT_EQ(s.h, 150);
  EXPECT_EQ(s.w, 200);
}

TEST(TransformsTest, RandomResizedCropStaysInsideAndWithinScale) {
  TransformOptions o;
  for (int seed = 0; seed < 500; ++seed) {
    Rng rng(seed);
    const CropBox b = SampleRandomResizedCrop(375, 500, o, rng);
    ASSERT_GE(b.y, 0);
    ASSERT_GE(b.x, 0);
    ASSERT_LE(b.y + b.h, 375);
    ASSERT_LE(b.x + b.w, 500);
    ASSERT_GT(b.h * b.w, 0);
  }
}

TEST(TransformsTest, OutputSizeAndDeterminism) {
  TransformOptions o;
  o.color_jitter = 0.4;
  o.randaugment_n = 2;
  o.random_erasing = 0.5;
  const Image big = testing::PatternImage(120, 90, 3, 5);
  for (int seed = 0; seed < 20; ++seed) {
    Rng a(seed), b(seed);
    Image x = TrainTransform(big, 64, o, a), y = TrainTransform(big, 64, o, b);
    ASSERT_EQ(x.h, 64);
    ASSERT_EQ(x.w, 64);
    ASSERT_EQ(x.pixels, y.pixels);
  }
  Image e = EvalTransform(big, 56, o);
  EXPECT_EQ(e.h, 56);
  EXPECT_EQ(e.w, 56);
  // Small images: pad_crop keeps size; eval at native size is the identity.
  const Image small = testing::PatternImage(28, 28, 1, 2);
  Rng r(1);
  EXPECT_EQ(TrainTransform(small, 28, o, r).h, 28);
  EXPECT_EQ(EvalTransform(small, 28, o).pixels, small.pixels);
}

// What the Loader does for an encoded image: draw the box from the size, cut out a band around it
// (there: decode only that), finish with TrainTransformOfBox. The same pixels and the same later draws as
// TrainTransform on the whole image, for every interpolation (none may read outside the box).
TEST(TransformsTest, TransformOfTheCutOutBoxEqualsTheWholeImagesTransform) {
  const Image big = testing::PatternImage(150, 211, 3, 8);
  for (const char* interp : {"bilinear", "bicubic", "area", "nearest"}) {
    TransformOptions o;
    o.interpolation = interp;
    o.color_jitter = 0.4;
    o.random_erasing = 0.5;
    ASSERT_EQ(TrainCropMode(big.h, big.w, o), "rrc");
    for (int seed = 0; seed < 30; ++seed) {
      Rng whole_rng(seed), crop_rng(seed);
      const Image whole = TrainTransform(big, 48, o, whole_rng);
      const CropBox b = SampleRandomResizedCrop(big.h, big.w, o, crop_rng);
      // A band around the box, as DecodeImageBand gives: the box's rows, a few more columns.
      const int left = std::max(0, b.x - 5), right = std::min(big.w, b.x + b.w + 3);
      const Image band = Crop(big, b.y, left, b.h, right - left);
      const Image cut = TrainTransformOfBox(band, CropBox{0, b.x - left, b.h, b.w}, 48, o, crop_rng);
      ASSERT_EQ(cut.pixels, whole.pixels) << interp << " seed " << seed;
      EXPECT_EQ(crop_rng.Below(1u << 30), whole_rng.Below(1u << 30)) << interp << " seed " << seed;
    }
  }
  TransformOptions o;
  EXPECT_EQ(TrainCropMode(64, 40, o), "pad_crop");
  EXPECT_EQ(TrainCropMode(65, 40, o), "rrc");
  o.train_crop = "none";
  EXPECT_EQ(TrainCropMode(500, 400, o), "none");
}

TEST(TransformsTest, EveryRandAugmentOpKeepsShape) {
  const Image img = testing::PatternImage(20, 30, 3, 9);
  for (const std::string& op : RandAugmentOps()) {
    Rng rng(3);
    Image out = ApplyRandAugmentOp(img, op, 9, rng);
    EXPECT_EQ(out.h, 20) << op;
    EXPECT_EQ(out.w, 30) << op;
    EXPECT_EQ(out.c, 3) << op;
  }
}

TEST(TransformsTest, RejectsBadOptions) {
  TransformOptions o;
  o.train_crop = "weird";
  EXPECT_FALSE(ValidateTransformOptions(o).ok());
  o = TransformOptions();
  o.crop_pct = 0;
  EXPECT_FALSE(ValidateTransformOptions(o).ok());
  o = TransformOptions();
  o.interpolation = "lanczos9";
  EXPECT_FALSE(ValidateTransformOptions(o).ok());
  o = TransformOptions();
  o.mean = {0.5f};
  EXPECT_FALSE(ValidateTransformOptions(o).ok());
  o = TransformOptions();
  o.train_decode = "half";
  EXPECT_NE(ValidateTransformOptions(o).message().find("train_decode"), std::string::npos);
}

TEST(TransformsTest, DecodeMinSideFollowsTheDecodeRule) {
  TransformOptions o;  // full size by default
  EXPECT_EQ(DecodeMinSide(o, 224, /*train=*/true), 0);
  EXPECT_EQ(DecodeMinSide(o, 224, /*train=*/false), 0);
  o.train_decode = "draft";
  EXPECT_EQ(DecodeMinSide(o, 224, /*train=*/true), 224);
  EXPECT_EQ(DecodeMinSide(o, 224, /*train=*/false), 0);
  o.eval_decode = "draft";  // eval needs the shorter side floor(224 / 0.875) = 256
  EXPECT_EQ(DecodeMinSide(o, 224, /*train=*/false), 256);
}

}  // namespace
}  // namespace cf::data
