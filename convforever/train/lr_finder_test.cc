// The LR range test's arithmetic: the bias-corrected smoothing and the steepest-descent
// suggestion, on curves whose answer is known. The sweep itself runs through the trainer binary in
// train_test.cc (TrainerLrFinder).
#include "convforever/train/lr_finder.h"

#include <cmath>

#include "gtest/gtest.h"

namespace cf::train {
namespace {

TEST(SmoothLosses, BiasCorrectedMovingAverage) {
  // beta 0.5: a = [0.5, 0.5*0.5+0.5*3, ...]; corrected by 1 - 0.5^(i+1).
  const std::vector<double> s = SmoothLosses({1.0, 3.0, 2.0}, 0.5);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_DOUBLE_EQ(s[0], 1.0);                     // 0.5 / 0.5
  EXPECT_DOUBLE_EQ(s[1], (0.25 + 1.5) / 0.75);     // 1.75 / 0.75
  EXPECT_DOUBLE_EQ(s[2], (0.875 + 1.0) / 0.875);   // 1.875 / 0.875
  for (double v : SmoothLosses({2.0, 2.0, 2.0, 2.0}, 0.98)) EXPECT_NEAR(v, 2.0, 1e-12);
}

// n points with lr = 10^x for x evenly spaced in [-6, 1] and smoothed loss = f(x).
std::vector<LrFinderPoint> Curve(int n, double (*f)(double)) {
  std::vector<LrFinderPoint> points;
  for (int i = 0; i < n; ++i) {
    const double x = -6.0 + 7.0 * i / (n - 1);
    const double loss = f(x);
    points.push_back({i + 1, std::pow(10.0, x), loss, loss});
  }
  return points;
}

TEST(SuggestLearningRate, SteepestDescentBeforeTheMinimum) {
  // Falls fastest at x = -3 (tanh's inflection), bottoms out near x = -1.5, then explodes.
  auto f = [](double x) { return 2.0 - std::tanh(2 * (x + 3)) + (x > -1.5 ? 5 * (x + 1.5) * (x + 1.5) : 0); };
  const double lr = SuggestLearningRate(Curve(141, f));
  EXPECT_NEAR(std::log10(lr), -3.0, 0.06) << lr;
}

TEST(SuggestLearningRate, IgnoresTheSteepRiseAfterTheMinimum) {
  // A logistic fall, steepest at x = -1, then a cliff after x = 0: only the fall is considered.
  auto f = [](double x) { return 1.0 / (1.0 + std::exp(3 * (x + 1))) + (x > 0 ? 100 * x : 0); };
  const double lr = SuggestLearningRate(Curve(141, f));
  EXPECT_NEAR(std::log10(lr), -1.0, 0.06) << lr;
}

TEST(SuggestLearningRate, RisingOrShortCurves) {
  auto rising = [](double x) { return 1.0 + std::exp(x); };
  const std::vector<LrFinderPoint> points = Curve(50, rising);
  EXPECT_DOUBLE_EQ(SuggestLearningRate(points), points.front().lr);
  EXPECT_EQ(SuggestLearningRate(Curve(4, rising)), 0.0);
}

TEST(LrFinderOptions, BadValuesNameTheFlag) {
  LrFinderOptions o;
  EXPECT_TRUE(ValidateLrFinderOptions(o).ok());
  o.start_lr = 1;
  o.end_lr = 0.1;
  EXPECT_NE(std::string(ValidateLrFinderOptions(o).message()).find("--lr_finder_start_lr"), std::string::npos);
  o = LrFinderOptions();
  o.steps = 2;
  EXPECT_NE(std::string(ValidateLrFinderOptions(o).message()).find("--lr_finder_steps"), std::string::npos);
}

}  // namespace
}  // namespace cf::train
