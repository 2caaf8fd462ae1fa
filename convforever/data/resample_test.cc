// ResampleRegion against PIL's Image.resize (BILINEAR, BICUBIC) on the golden cases of
// tools/golden/resize_golden.py, at every CPU level, plus the invariants PIL's resize has.
#include "convforever/data/resample.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "convforever/base/cpu_isa_testing.h"
#include "convforever/data/image_ops.h"
#include "convforever/data/test_util.h"
#include "convforever/data/transforms.h"

namespace cf::data {
namespace {

nlohmann::json LoadGolden() {
  std::ifstream in(testing::TestdataPath("resize_golden.json"));
  EXPECT_TRUE(in) << testing::TestdataPath("resize_golden.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

struct Diff {
  int max = 0;
  double mean = 0;
  double over_one = 0;  // fraction of values off by more than 1
};

Diff Compare(const Image& got, const std::vector<int>& want) {
  EXPECT_EQ(got.pixels.size(), want.size());
  Diff d;
  int64_t sum = 0, over = 0;
  for (size_t i = 0; i < std::min(want.size(), got.pixels.size()); ++i) {
    const int e = std::abs(got.pixels[i] - want[i]);
    d.max = std::max(d.max, e);
    sum += e;
    over += e > 1;
  }
  d.mean = want.empty() ? 0 : static_cast<double>(sum) / want.size();
  d.over_one = want.empty() ? 0 : static_cast<double>(over) / want.size();
  return d;
}

class ResampleAtLevel : public base::CpuIsaTest {};

TEST_P(ResampleAtLevel, MatchesPilWithinOne) {
  const nlohmann::json g = LoadGolden();
  ASSERT_GE(g["cases"].size(), 9u);
  int worst = 0;
  double mean_sum = 0;
  int n = 0;
  for (const auto& c : g["cases"]) {
    Image img(c["h"], c["w"], c["c"]);
    img.pixels = c["input"].get<std::vector<uint8_t>>();
    const auto box = c["box"].get<std::vector<int>>();
    for (const auto& [name, filter] : {std::pair<std::string, ResampleFilter>{"bilinear", ResampleFilter::kTriangle},
                                       {"bicubic", ResampleFilter::kCubic}}) {
      const Image out = ResampleRegion(img, box[0], box[1], box[2], box[3], c["out_h"], c["out_w"], filter);
      ASSERT_EQ(out.h, c["out_h"].get<int>());
      ASSERT_EQ(out.w, c["out_w"].get<int>());
      ASSERT_EQ(out.c, c["c"].get<int>());
      const Diff d = Compare(out, c["expected"][name].get<std::vector<int>>());
      const std::string what = name + " " + c["h"].dump() + "x" + c["w"].dump() + "x" + c["c"].dump() + " box " +
                               c["box"].dump() + " -> " + c["out_h"].dump() + "x" + c["out_w"].dump();
      EXPECT_LE(d.max, 1) << what;
      EXPECT_LE(d.over_one, 0.0) << what;
      EXPECT_LE(d.mean, 0.05) << what;
      std::printf("  %-50s max %d mean %.4f\n", what.c_str(), d.max, d.mean);
      worst = std::max(worst, d.max);
      mean_sum += d.mean;
      ++n;
    }
  }
  std::printf("all %d cases: max |diff| %d, mean |diff| %.4f\n", n, worst, mean_sum / n);
}

TEST_P(ResampleAtLevel, SameSizeIsACopyOfTheRegion) {
  const Image img = testing::PatternImage(17, 23, 3, 4);
  const Image out = ResampleRegion(img, 2, 3, 11, 13, 11, 13, ResampleFilter::kCubic);
  EXPECT_EQ(out.pixels, Crop(img, 2, 3, 11, 13).pixels);
}

TEST_P(ResampleAtLevel, ConstantStaysConstantAtAnyScale) {
  // Normalised weights: a flat image stays flat, down or up, for both filters (bicubic's
  // negative lobes included), and for 1, 3 and 4 channels.
  for (int c : {1, 3, 4}) {
    Image img(31, 45, c);
    for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(200 + i % c);
    for (auto f : {ResampleFilter::kTriangle, ResampleFilter::kCubic}) {
      for (auto [oh, ow] : {std::pair{7, 5}, std::pair{64, 90}, std::pair{31, 9}, std::pair{1, 1}}) {
        const Image out = ResampleRegion(img, 0, 0, 31, 45, oh, ow, f);
        for (size_t i = 0; i < out.pixels.size(); ++i) {
          ASSERT_EQ(out.pixels[i], 200 + i % c) << "c " << c << " to " << oh << "x" << ow;
        }
      }
    }
  }
}

TEST_P(ResampleAtLevel, WideRowsUseTheVectorBodyAndItsTail) {
  // Rows wider than every level's vector width, of a length that leaves a tail: the vertical pass
  // must agree with a column-at-a-time reference (a 1-pixel-wide resample of each column).
  const Image img = testing::PatternImage(40, 37, 1, 8);
  const Image out = ResampleRegion(img, 0, 0, 40, 37, 13, 37, ResampleFilter::kCubic);
  for (int x = 0; x < 37; ++x) {
    const Image col = ResampleRegion(img, 0, x, 40, 1, 13, 1, ResampleFilter::kCubic);
    for (int y = 0; y < 13; ++y) ASSERT_EQ(out.at(y, x, 0), col.at(y, 0, 0)) << y << "," << x;
  }
}

// The whole eval transform (resize the shorter side to floor(size / crop_pct), center crop) against
// torchvision's Resize + CenterCrop on a PIL image.
TEST_P(ResampleAtLevel, EvalTransformMatchesTorchvision) {
  const nlohmann::json g = LoadGolden();
  const auto& ev = g["eval"];
  Image img(ev["h"], ev["w"], 3);
  img.pixels = ev["input"].get<std::vector<uint8_t>>();
  for (const char* name : {"bilinear", "bicubic"}) {
    TransformOptions o;
    o.interpolation = name;
    o.crop_pct = ev["crop_pct"];
    const Image out = EvalTransform(img, ev["size"], o);
    const Diff d = Compare(out, ev[name].get<std::vector<int>>());
    EXPECT_LE(d.max, 1) << name;
    EXPECT_LE(d.mean, 0.05) << name;
    std::printf("  eval %s: max %d mean %.4f\n", name, d.max, d.mean);
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, ResampleAtLevel, base::AllCpuIsasForTesting(), base::CpuIsaTestName);

TEST(ResampleTest, RegionOutsideTheImageIsAnErrorNamingIt) {
  const Image img = testing::PatternImage(10, 10, 3, 1);
  try {
    ResampleRegion(img, 5, 5, 6, 5, 4, 4, ResampleFilter::kTriangle);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("10x10"), std::string::npos) << e.what();
  }
}

TEST(ResampleTest, BadCpuIsaSettingIsAnError) {
  const std::string out = base::RunThisTestWithCpuIsa("x86-64-v9", "ResampleTest.DISABLED_ChildResamples");
  EXPECT_NE(out.find("x86-64-v9"), std::string::npos) << out;
  EXPECT_NE(out.find("image resampling"), std::string::npos) << out;
}

TEST(ResampleTest, DISABLED_ChildResamples) {
  const Image img = testing::PatternImage(10, 10, 3, 1);
  try {
    ResampleRegion(img, 0, 0, 10, 10, 4, 4, ResampleFilter::kTriangle);
  } catch (const std::invalid_argument& e) {
    std::printf("%s\n", e.what());
  }
}

}  // namespace
}  // namespace cf::data
