#include "convforever/report/power_law_fit.h"

#include <cmath>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace cf::report {
namespace {

struct Truth {
  double a, b, c;
};

void ExpectRecovers(const Truth& t, const std::vector<double>& C) {
  std::vector<double> L;
  for (double x : C) L.push_back(t.a * std::pow(x, -t.b) + t.c);
  auto fit = FitPowerLaw(C, L);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_NEAR(fit->a, t.a, 1e-3 * t.a) << fit->Formula();
  EXPECT_NEAR(fit->b, t.b, 1e-3 * t.b) << fit->Formula();
  if (t.c == 0) {
    EXPECT_NEAR(fit->c, 0, 1e-6) << fit->Formula();
  } else {
    EXPECT_NEAR(fit->c, t.c, 1e-3 * t.c) << fit->Formula();
  }
  EXPECT_LT(fit->rms_log_residual, 1e-6);
  for (double x : C) EXPECT_NEAR((*fit)(x), t.a * std::pow(x, -t.b) + t.c, 1e-4);
}

std::vector<double> Geometric(double first, double ratio, int n) {
  std::vector<double> out;
  for (int i = 0; i < n; ++i) out.push_back(first * std::pow(ratio, i));
  return out;
}

TEST(PowerLawFit, RecoversKnownParametersWithoutNoise) {
  // Loss against parameters (1e5 .. 1e8), against FLOPs (1e12 .. 1e18), and error fractions.
  ExpectRecovers({30.0, 0.28, 1.7}, Geometric(1e5, 2, 11));
  ExpectRecovers({2.0e3, 0.25, 0.35}, Geometric(1e12, 10, 7));
  ExpectRecovers({0.9, 0.5, 0.04}, {1e4, 3e4, 1e5, 4e5, 1e6});
  ExpectRecovers({5.0, 0.3, 0.0}, Geometric(1e3, 3, 6));  // no floor
  ExpectRecovers({12.0, 0.2, 2.0}, {1e6, 1e7, 1e8});      // exactly three points
}

TEST(PowerLawFit, NoisyDataStaysClose) {
  const Truth t{30.0, 0.28, 1.7};
  std::vector<double> C = Geometric(1e5, 2, 12), L;
  for (size_t i = 0; i < C.size(); ++i) L.push_back((t.a * std::pow(C[i], -t.b) + t.c) * (1 + 0.002 * ((i % 3) - 1.0)));
  auto fit = FitPowerLaw(C, L);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_NEAR(fit->b, t.b, 0.1 * t.b);
  EXPECT_NEAR(fit->c, t.c, 0.1 * t.c);
}

TEST(PowerLawFit, DegenerateInputHasAClearStatus) {
  struct Case {
    std::vector<double> C, L;
    const char* message;
  };
  const Case cases[] = {
      {{1e5, 1e6}, {2.0, 1.5}, "at least 3 distinct x values; got 2"},
      {{1e5, 1e5, 1e6, 1e6}, {2.0, 2.1, 1.5, 1.4}, "at least 3 distinct x values; got 2 (4 points)"},
      {{1e5, 1e6, 1e7}, {1.5, 1.5, 1.5}, "every y is 1.5"},
      {{1e5, 0, 1e7}, {2.0, 1.5, 1.2}, "point 2 has x = 0"},
      {{1e5, -1e6, 1e7}, {2.0, 1.5, 1.2}, "point 2 has x = -1e6"},
      {{1e5, 1e6, 1e7}, {2.0, 1.5, 0}, "point 3 has y = 0"},
      {{1e5, 1e6, 1e7}, {2.0, NAN, 1.0}, "point 2 has y = nan"},
      {{1e5, 1e6}, {2.0}, "2 x values but 1 y values"},
  };
  for (const Case& c : cases) {
    auto fit = FitPowerLaw(c.C, c.L);
    ASSERT_FALSE(fit.ok()) << c.message;
    EXPECT_TRUE(absl::StrContains(fit.status().message(), c.message)) << fit.status();
  }
}

TEST(PowerLawFit, FormulaPrintsTheParameters) {
  PowerLawFit fit;
  fit.a = 2100, fit.b = 0.31, fit.c = 0.42;
  EXPECT_EQ(fit.Formula("N"), "L = 2100 * N^-0.31 + 0.42");
}

}  // namespace
}  // namespace cf::report
