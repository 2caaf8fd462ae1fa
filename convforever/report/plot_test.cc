#include "convforever/report/plot.h"

#include <cmath>

#include "absl/strings/match.h"
#include "convforever/report/svg_render.h"
#include "gtest/gtest.h"

namespace cf::report {
namespace {

TEST(Ticks, LinearTicksAreOneTwoFiveSteps) {
  EXPECT_EQ(LinearTicks(0, 100, 6), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  EXPECT_EQ(LinearTicks(0.13, 0.61, 6), (std::vector<double>{0.2, 0.3, 0.4, 0.5, 0.6}));
  EXPECT_EQ(LinearTicks(-3, 7, 3), (std::vector<double>{0, 5}));
  const auto ticks = LinearTicks(1.2, 1.55, 8);
  ASSERT_FALSE(ticks.empty());
  EXPECT_NEAR(ticks[1] - ticks[0], 0.05, 1e-12);
  EXPECT_TRUE(LinearTicks(1, 1, 5).empty());
}

TEST(Ticks, LogTicksAreDecadesOrOneTwoFive) {
  EXPECT_EQ(Log10Ticks(3e-7, 2, 8), (std::vector<double>{1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1}));
  // Twelve decades, at most 6 ticks: every other decade.
  EXPECT_EQ(Log10Ticks(1, 1e11, 6).size(), 6u);
  // Within one decade: 1-2-5 multiples.
  EXPECT_EQ(Log10Ticks(1.5, 60, 8), (std::vector<double>{2, 5, 10, 20, 50}));
}

TEST(Ticks, LabelsAreShort) {
  EXPECT_EQ(TickLabel(1e-4, Scale::kLog10), "1e-4");
  EXPECT_EQ(TickLabel(0.01, Scale::kLog10), "0.01");
  EXPECT_EQ(TickLabel(1e12, Scale::kLog10), "1e12");
  EXPECT_EQ(TickLabel(2.5e-5, Scale::kLinear), "2.5e-5");
  EXPECT_EQ(TickLabel(0.0008, Scale::kLinear), "0.0008");
  EXPECT_EQ(TickLabel(1500, Scale::kLinear), "1500");
}

TEST(Downsample, KeepsAtMostTheLimitWithEndsAndSpikes) {
  std::vector<Point> points;
  for (int i = 0; i < 100000; ++i) points.push_back({static_cast<double>(i), i == 54321 ? 100.0 : std::sin(i * 0.01)});
  const auto out = Downsample(points);
  EXPECT_LE(out.size(), static_cast<size_t>(kMaxDisplayPoints));
  EXPECT_GE(out.size(), static_cast<size_t>(kMaxDisplayPoints) - 4);
  EXPECT_EQ(out.front().x, 0);
  EXPECT_EQ(out.back().x, 99999);
  bool spike = false;
  for (const Point& p : out) spike |= p.y == 100.0;
  EXPECT_TRUE(spike);
  for (size_t i = 1; i < out.size(); ++i) EXPECT_LT(out[i - 1].x, out[i].x);
  EXPECT_EQ(Downsample({{1, 1}, {2, 2}}).size(), 2u);
}

TEST(Ellipsize, CutsLongTextByCharacters) {
  EXPECT_EQ(Ellipsize("short", 10), "short");
  EXPECT_EQ(Ellipsize("abcdefghijkl", 8), "abcde...");
  EXPECT_EQ(Ellipsize("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 4), "\xC3\xA9...");  // 5 x 'é'
}

TEST(Layout, LogAxisDropsNonPositivePoints) {
  Plot plot;
  plot.x.scale = Scale::kLog10;
  plot.series.push_back({"s", {{0, 1}, {-1, 2}, {10, 3}, {100, NAN}, {1000, 4}}});
  PlotLayout layout(plot, {});
  ASSERT_FALSE(layout.empty());
  EXPECT_EQ(layout.DisplayPoints(0).size(), 2u);
  EXPECT_LT(layout.PixelX(10), layout.PixelX(1000));
  EXPECT_GT(layout.PixelY(3), layout.PixelY(4));  // y grows downwards
  EXPECT_GE(layout.PixelX(10), layout.left());
  EXPECT_LE(layout.PixelX(1000), layout.right());
}

TEST(Svg, EscapesTextAndHasTheId) {
  Plot plot;
  plot.id = "loss";
  plot.title = "<b>loss</b> & more";
  plot.series.push_back({"<script>alert(1)</script>", {{1, 1}, {2, 2}}});
  const std::string svg = RenderSvg(plot);
  EXPECT_TRUE(absl::StartsWith(svg, "<svg id=\"plot-loss\""));
  EXPECT_FALSE(absl::StrContains(svg, "<script"));
  EXPECT_FALSE(absl::StrContains(svg, "<b>"));
  EXPECT_TRUE(absl::StrContains(svg, "&lt;script&gt;"));
  EXPECT_TRUE(absl::StrContains(svg, "&amp; more"));
  EXPECT_TRUE(absl::StrContains(svg, "<polyline"));
}

TEST(Svg, EmptyPlotSaysWhy) {
  Plot plot;
  plot.id = "top1";
  plot.empty_message = "no data: no eval/top1 records";
  const std::string svg = RenderSvg(plot);
  EXPECT_TRUE(absl::StrContains(svg, "no data: no eval/top1 records"));
  EXPECT_FALSE(absl::StrContains(svg, "<polyline"));
}

}  // namespace
}  // namespace cf::report
