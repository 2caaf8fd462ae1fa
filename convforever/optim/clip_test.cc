// ClipGradNorm against torch.nn.utils.clip_grad_norm_ (fixture), plus accumulation helpers.
#include "convforever/optim/clip.h"

#include <cmath>

#include "convforever/optim/test_util.h"
#include "gtest/gtest.h"

namespace cf::optim {
namespace {

std::vector<at::Tensor> Params(const nlohmann::json& fx) {
  std::vector<at::Tensor> ps;
  for (size_t i = 0; i < fx["grads"].size(); ++i) {
    const auto shape = fx["shapes"][i].get<std::vector<int64_t>>();
    at::Tensor p = at::zeros(shape).requires_grad_(true);
    p.mutable_grad() = testing::ToTensor(fx["grads"][i], shape);
    ps.push_back(p);
  }
  ps.push_back(at::zeros({3}).requires_grad_(true));  // no grad: ignored
  return ps;
}

TEST(Clip, MatchesTorch) {
  const nlohmann::json fx = testing::ReadFixture("optim_clip.json");
  for (const auto& c : fx["cases"]) {
    std::vector<at::Tensor> ps = Params(fx);
    const double before = GradNorm(ps);
    const double total = ClipGradNorm(ps, c["max_norm"]);
    EXPECT_NEAR(total, c["total_norm"].get<double>(), 1e-6 * total);
    EXPECT_DOUBLE_EQ(before, total);
    for (size_t i = 0; i < c["clipped"].size(); ++i) {
      const auto shape = fx["shapes"][i].get<std::vector<int64_t>>();
      EXPECT_LT(testing::MaxRelDiff(ps[i].grad(), testing::ToTensor(c["clipped"][i], shape)), 1e-6);
    }
  }
}

TEST(Clip, InfPropagatesAndEmptyIsZero) {
  at::Tensor p = at::zeros({2}).requires_grad_(true);
  p.mutable_grad() = at::tensor({1.0f, INFINITY});
  EXPECT_TRUE(std::isinf(ClipGradNorm({p}, 1.0)));
  at::Tensor q = at::zeros({2}).requires_grad_(true);
  EXPECT_EQ(ClipGradNorm({q}, 1.0), 0.0);
}

TEST(Accumulation, BoundariesAndScaling) {
  Accumulation acc{4};
  EXPECT_FALSE(acc.IsBoundary(0));
  EXPECT_TRUE(acc.IsBoundary(3));
  EXPECT_TRUE(acc.IsBoundary(7));
  EXPECT_EQ(acc.OptimizerStep(7), 1);
  EXPECT_DOUBLE_EQ(acc.LossScale(), 0.25);
  at::Tensor p = at::zeros({2}).requires_grad_(true);
  p.mutable_grad() = at::tensor({4.0f, 8.0f});
  ScaleGrads({p}, acc.LossScale());
  EXPECT_TRUE(at::equal(p.grad(), at::tensor({1.0f, 2.0f})));
}

}  // namespace
}  // namespace cf::optim
