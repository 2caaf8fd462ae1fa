// Lion and LAMB against their papers' update rules on hand-checkable cases (values worked out by
// hand in the comments; no reference library involved).
#include <cmath>

#include "convforever/optim/optimizer.h"
#include "gtest/gtest.h"

namespace cf::optim {
namespace {

std::unique_ptr<Optimizer> Make(OptimizerOptions o, at::Tensor p, double wd) {
  auto r = CreateOptimizer(o, {ParamGroup{{"p"}, {p}, wd, 1.0}});
  EXPECT_TRUE(r.ok()) << r.status();
  return std::move(r).value();
}

void ExpectValues(const at::Tensor& p, const std::vector<double>& want) {
  ASSERT_EQ(p.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(p.detach()[i].item<double>(), want[i], 1e-6) << "element " << i;
  }
}

TEST(Lion, PaperRuleTwoSteps) {
  OptimizerOptions o;
  o.type = "lion";
  o.beta1 = 0.9;
  o.beta2 = 0.99;
  at::Tensor p = at::tensor({1.0f, -2.0f, 0.5f}).requires_grad_(true);
  auto opt = Make(o, p, /*wd=*/0.1);
  // Step 1, m = 0: c = 0.1 g = [0.05, -0.01, 0] -> sign [1, -1, 0];
  // p = 0.99 p - 0.1 sign = [0.89, -1.88, 0.495]; m = 0.01 g = [0.005, -0.001, 0].
  p.mutable_grad() = at::tensor({0.5f, -0.1f, 0.0f});
  opt->Step(0.1);
  ExpectValues(p, {0.89, -1.88, 0.495});
  // Step 2: c = 0.9 m + 0.1 g = [0.0035, -0.0109, 0.1]: the first coordinate follows the momentum
  // against its negative gradient. p = 0.99 p - 0.1 [1, -1, 1] = [0.7811, -1.7612, 0.39005].
  p.mutable_grad() = at::tensor({-0.01f, -0.1f, 1.0f});
  opt->Step(0.1);
  ExpectValues(p, {0.7811, -1.7612, 0.39005});
  // m = 0.99 m + 0.01 g = [0.00485, -0.00199, 0.01]; a zero gradient now moves along sign(0.9 m).
  p.mutable_grad() = at::zeros({3});
  opt->Step(0.1);
  ExpectValues(p, {0.7811 * 0.99 - 0.1, -1.7612 * 0.99 + 0.1, 0.39005 * 0.99 - 0.1});
}

TEST(Lamb, TrustRatioScalesTheAdamDirection) {
  OptimizerOptions o;
  o.type = "lamb";
  o.eps = 0.0;
  at::Tensor p = at::tensor({3.0f, 4.0f}).requires_grad_(true);  // ||p|| = 5
  auto opt = Make(o, p, /*wd=*/0.1);
  // Step 1: m_hat = g, v_hat = g^2 -> r = sign(g) = [1, -1]; u = r + 0.1 p = [1.3, -0.6];
  // trust = 5 / sqrt(1.3^2 + 0.6^2) = 5 / sqrt(2.05); p -= 0.1 * trust * u.
  p.mutable_grad() = at::tensor({2.0f, -1.0f});
  opt->Step(0.1);
  const double trust = 5.0 / std::sqrt(2.05);
  ExpectValues(p, {3.0 - 0.1 * trust * 1.3, 4.0 + 0.1 * trust * 0.6});
}

TEST(Lamb, BiasCorrectionOnSecondStep) {
  OptimizerOptions o;
  o.type = "lamb";
  o.eps = 0.0;
  at::Tensor p = at::tensor({1.0f, 0.0f}).requires_grad_(true);
  auto opt = Make(o, p, /*wd=*/0.0);
  p.mutable_grad() = at::tensor({1.0f, 1.0f});
  opt->Step(0.01);
  // After step 1: r = [1, 1], trust = 1/sqrt(2), p = [1 - 0.01/sqrt2, -0.01/sqrt2].
  const double s2 = std::sqrt(2.0);
  const double p0 = 1 - 0.01 / s2, p1 = -0.01 / s2;
  ExpectValues(p, {p0, p1});
  // Step 2 with g = [1, -1]: m = 0.9*0.1*[1,1] + 0.1*[1,-1] = [0.19, -0.01];
  // v = 0.999*0.001 + 0.001 = 0.001999 for both; m_hat = m / 0.19, v_hat = v / 0.001999 = 1;
  // r = [1, -0.01/0.19]; trust = ||p|| / ||r||.
  p.mutable_grad() = at::tensor({1.0f, -1.0f});
  opt->Step(0.01);
  const double r0 = 1.0, r1 = -0.01 / 0.19;
  const double trust = std::hypot(p0, p1) / std::hypot(r0, r1);
  ExpectValues(p, {p0 - 0.01 * trust * r0, p1 - 0.01 * trust * r1});
}

TEST(Lamb, ZeroNormGivesTrustOneAndClampApplies) {
  OptimizerOptions o;
  o.type = "lamb";
  o.eps = 0.0;
  at::Tensor z = at::zeros({2}).requires_grad_(true);
  auto opt = Make(o, z, 0.0);
  z.mutable_grad() = at::tensor({3.0f, -0.5f});
  opt->Step(0.1);  // ||p|| = 0 -> trust 1: p = -0.1 * sign(g)
  ExpectValues(z, {-0.1, 0.1});

  o.max_trust = 2.0;  // 5 / sqrt(2.05) = 3.49 clamps to 2
  at::Tensor p = at::tensor({3.0f, 4.0f}).requires_grad_(true);
  auto clamped = Make(o, p, 0.1);
  p.mutable_grad() = at::tensor({2.0f, -1.0f});
  clamped->Step(0.1);
  ExpectValues(p, {3.0 - 0.1 * 2 * 1.3, 4.0 + 0.1 * 2 * 0.6});
}

TEST(Lamb, RejectsBadTrustClamp) {
  OptimizerOptions o;
  o.type = "lamb";
  o.max_trust = 1.0;
  o.min_trust = 2.0;
  auto r = CreateOptimizer(o, {ParamGroup{{"p"}, {at::zeros({1})}, 0.0, 1.0}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("min_trust"), std::string::npos);
}

}  // namespace
}  // namespace cf::optim
