// OptimizerStep on one rank with plain SGD, where every number is known by hand: the clip, the
// step, the dropped gradients, and the skips (a non-finite loss, an fp16 overflow) that leave the
// weights alone and back the loss scale off. The ranks' agreement, ZeRO's reduction and DiLoCo's
// hook run in the trainer's multi-process tests (train_test.cc TrainerZero, diloco_train_test.cc).
#include "convforever/train/optimizer_step.h"

#include <cmath>
#include <limits>
#include <memory>
#include <utility>

#include <ATen/ATen.h>

#include "gtest/gtest.h"

namespace cf::train {
namespace {

struct OneParam {
  at::Tensor w = at::tensor({1.0f, 2.0f}).requires_grad_(true);
  std::unique_ptr<optim::Optimizer> sgd;
  std::unique_ptr<optim::LossScaler> scaler;

  explicit OneParam(bool fp16 = false) {
    optim::OptimizerOptions o;
    o.type = "sgd";
    o.momentum = 0;
    optim::ParamGroup g;
    g.params = {w};
    sgd = *optim::CreateOptimizer(o, {g});
    if (fp16) {
      optim::LossScalerOptions s;
      s.init_scale = 4;
      scaler = std::make_unique<optim::LossScaler>(s);
    }
  }
  OptimizerStep Step(double max_grad_norm) {
    OptimizerStepParts p;
    p.params = {w};
    p.optimizer = sgd.get();
    p.scaler = scaler.get();
    p.max_grad_norm = max_grad_norm;
    p.total_steps = 10;
    return OptimizerStep(std::move(p));
  }
  void SetGrad(float a, float b) { w.mutable_grad() = at::tensor({a, b}); }
};

TEST(OptimizerStep, ClipsStepsAndDropsTheGradients) {
  OneParam m;
  OptimizerStep step = m.Step(/*max_grad_norm=*/1.0);
  m.SetGrad(3, 4);  // norm 5, clipped to [0.6, 0.8]
  absl::StatusOr<StepOutcome> r = step.Apply(0, /*lr=*/0.1, /*loss_finite=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stepped);
  EXPECT_NEAR(r->grad_norm, 5.0, 1e-5);
  EXPECT_NEAR(m.w[0].item<float>(), 1.0 - 0.06, 1e-5);
  EXPECT_NEAR(m.w[1].item<float>(), 2.0 - 0.08, 1e-5);
  EXPECT_FALSE(m.w.grad().defined());
}

TEST(OptimizerStep, NonFiniteLossSkipsWithoutTouchingTheWeights) {
  OneParam m(/*fp16=*/true);
  OptimizerStep step = m.Step(0);
  m.SetGrad(3, 4);
  absl::StatusOr<StepOutcome> r = step.Apply(0, 0.1, /*loss_finite=*/false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->stepped);
  EXPECT_EQ(r->grad_norm, 0.0);  // skipped before the norm was taken
  EXPECT_FLOAT_EQ(m.w[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(m.w[1].item<float>(), 2.0f);
  EXPECT_FALSE(m.w.grad().defined());
  EXPECT_DOUBLE_EQ(m.scaler->scale(), 2.0);  // backed off by half
}

TEST(OptimizerStep, Fp16UnscalesAndSkipsAnOverflow) {
  OneParam m(/*fp16=*/true);
  OptimizerStep step = m.Step(0);
  m.SetGrad(4, 8);  // scaled by 4: the true gradient is [1, 2]
  absl::StatusOr<StepOutcome> r = step.Apply(0, 0.5, true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stepped);
  EXPECT_NEAR(r->grad_norm, std::sqrt(5.0), 1e-5);
  EXPECT_NEAR(m.w[0].item<float>(), 0.5, 1e-6);
  EXPECT_NEAR(m.w[1].item<float>(), 1.0, 1e-6);

  m.SetGrad(std::numeric_limits<float>::infinity(), 1);
  r = step.Apply(1, 0.5, true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->stepped);
  EXPECT_NEAR(m.w[0].item<float>(), 0.5, 1e-6);
  EXPECT_DOUBLE_EQ(m.scaler->scale(), 2.0);
}

}  // namespace
}  // namespace cf::train
