#include "convforever/report/png_render.h"

#include <cmath>

#include "absl/strings/match.h"
#include "convforever/report/test_fixtures.h"
#include "gtest/gtest.h"
#include "opencv2/imgcodecs.hpp"
#include "opencv2/imgproc.hpp"

namespace cf::report {
namespace {

Plot Sample() {
  Plot plot;
  plot.id = "loss";
  plot.title = "Training loss";
  plot.x.label = "step";
  plot.y.label = "loss";
  Series a{"train/loss", {}, SeriesStyle::kLine};
  Series b{"fit", {}, SeriesStyle::kDashedLine};
  for (int i = 1; i <= 500; ++i) {
    a.points.push_back({static_cast<double>(i), 2.0 * std::exp(-i / 100.0) + 0.3});
    b.points.push_back({static_cast<double>(i), 2.0 * std::exp(-i / 120.0) + 0.3});
  }
  plot.series = {a, b};
  plot.vertical_lines.push_back({250, "marker"});
  plot.notes.push_back("a = 1.0");
  return plot;
}

TEST(PngRender, WritesAReadableNonBlankImage) {
  const std::string path = testing::MakeTempDir("png") + "/loss.png";
  const PlotSize size{800, 420};
  ASSERT_TRUE(WritePlotPng(Sample(), path, size).ok());
  const cv::Mat image = cv::imread(path, cv::IMREAD_COLOR);
  ASSERT_FALSE(image.empty()) << path;
  EXPECT_EQ(image.cols, 800);
  EXPECT_EQ(image.rows, 420);
  // Not blank: a good share of non-white pixels, and the first series' color drawn.
  cv::Mat gray;
  cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
  const int non_white = static_cast<int>(image.total()) - cv::countNonZero(gray >= 250);
  EXPECT_GT(non_white, 2000);
  const Rgb c = PaletteColor(0);
  cv::Mat mask;
  cv::inRange(image, cv::Scalar(c.b - 40, c.g - 40, c.r - 40), cv::Scalar(c.b + 40, c.g + 40, c.r + 40), mask);
  EXPECT_GT(cv::countNonZero(mask), 300);
}

TEST(PngRender, EmptyPlotStillRenders) {
  Plot plot;
  plot.title = "nothing";
  const cv::Mat image = RenderPlotImage(plot, {640, 360});
  EXPECT_EQ(image.cols, 640);
  EXPECT_EQ(image.rows, 360);
}

TEST(PngRender, UnwritablePathNamesIt) {
  const absl::Status status = WritePlotPng(Sample(), "/proc/no/such/dir/x.png");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), "/proc/no/such/dir/x.png")) << status;
}

}  // namespace
}  // namespace cf::report
