#include "convforever/train/loss.h"

#include <cmath>

#include "gtest/gtest.h"

namespace cf::train {
namespace {

TEST(Loss, HardLabelsMatchHandComputedCrossEntropy) {
  at::Tensor logits = at::tensor({2.0f, 0.0f, -1.0f}).reshape({1, 3});
  at::Tensor target = at::tensor({0}, at::kLong);
  const double lse = std::log(std::exp(2.0) + std::exp(0.0) + std::exp(-1.0));
  EXPECT_NEAR(ClassificationLoss(logits, target, 0.0).item<double>(), lse - 2.0, 1e-6);
  // Smoothing eps: (1-eps) * CE(onehot) + eps * mean_k(-log p_k).
  const double eps = 0.1;
  const double mean_nll = (3 * lse - (2.0 + 0.0 - 1.0)) / 3;
  EXPECT_NEAR(ClassificationLoss(logits, target, eps).item<double>(),
              (1 - eps) * (lse - 2.0) + eps * mean_nll, 1e-6);
}

TEST(Loss, SoftTargetsEqualHardWhenOneHot) {
  at::Tensor logits = at::randn({4, 5});
  at::Tensor labels = at::tensor({0, 3, 4, 1}, at::kLong);
  at::Tensor onehot = at::one_hot(labels, 5).to(at::kFloat);
  EXPECT_NEAR(ClassificationLoss(logits, onehot, 0.0).item<double>(),
              ClassificationLoss(logits, labels, 0.0).item<double>(), 1e-6);
}

TEST(Loss, LowPrecisionLogitsAreUpcast) {
  at::Tensor logits = at::randn({8, 10});
  at::Tensor labels = at::randint(10, {8}, at::kLong);
  at::Tensor loss = ClassificationLoss(logits.to(at::kBFloat16), labels, 0.1);
  EXPECT_EQ(loss.scalar_type(), at::kFloat);
  EXPECT_NEAR(loss.item<double>(), ClassificationLoss(logits, labels, 0.1).item<double>(), 0.05);
}

TEST(Loss, CountCorrectTop1Top5) {
  // Row 0: class 2 is the argmax. Row 1: class 0 is 6th of 6 (outside top 5).
  at::Tensor logits = at::tensor({0.f, 1.f, 9.f, 2.f, 3.f, 4.f,  //
                                  0.f, 1.f, 9.f, 2.f, 3.f, 4.f})
                          .reshape({2, 6});
  TopKCounts c = CountCorrect(logits, at::tensor({2, 0}, at::kLong));
  EXPECT_EQ(c.top1, 1);
  EXPECT_EQ(c.top5, 1);
  c = CountCorrect(logits, at::tensor({5, 1}, at::kLong));
  EXPECT_EQ(c.top1, 0);
  EXPECT_EQ(c.top5, 2);
}

}  // namespace
}  // namespace cf::train
