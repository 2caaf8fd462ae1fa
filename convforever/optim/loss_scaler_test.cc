// LossScaler: GradScaler's scale sequence over planted infs (fixture optim_scaler.json, made by
// tools/golden/optim_golden.py from _amp_update_scale_'s documented rules, see its "source"),
// unscaling and inf detection on real gradients, skipped steps, hysteresis, state round trip.
#include "convforever/optim/loss_scaler.h"

#include <cmath>

#include "convforever/optim/test_util.h"
#include "gtest/gtest.h"

namespace cf::optim {
namespace {

TEST(LossScaler, MatchesGradScalerSequence) {
  const nlohmann::json fx = testing::ReadFixture("optim_scaler.json");
  LossScalerOptions o;
  o.init_scale = fx["init_scale"];
  o.growth_factor = fx["growth_factor"];
  o.backoff_factor = fx["backoff_factor"];
  o.growth_interval = fx["growth_interval"];
  LossScaler scaler(o);
  const auto infs = fx["found_inf"].get<std::vector<bool>>();
  ASSERT_GT(infs.size(), 20u);
  for (size_t i = 0; i < infs.size(); ++i) {
    scaler.Update(infs[i]);
    EXPECT_EQ(scaler.scale(), fx["scale_after_update"][i].get<double>()) << "update " << i;
    EXPECT_EQ(scaler.growth_tracker(), fx["growth_tracker_after_update"][i].get<int64_t>()) << i;
  }
}

TEST(LossScaler, ScalesUnscalesAndSkipsInfSteps) {
  at::Tensor p = at::ones({2}).requires_grad_(true);
  OptimizerOptions oo;
  oo.type = "sgd";
  oo.momentum = 0;
  auto opt = CreateOptimizer(oo, {ParamGroup{{"p"}, {p}, 0.0, 1.0}});
  ASSERT_TRUE(opt.ok());
  LossScalerOptions o;
  o.init_scale = 1024;
  o.growth_interval = 2;
  LossScaler scaler(o);
  EXPECT_EQ(scaler.Scale(at::full({}, 3.0)).item<double>(), 3072.0);

  p.mutable_grad() = at::tensor({1024.0f, -2048.0f});  // scaled gradient of [1, -2]
  EXPECT_TRUE(scaler.Step(**opt, 0.5));
  EXPECT_TRUE(at::equal(p.grad(), at::tensor({1.0f, -2.0f})));
  EXPECT_TRUE(at::equal(p.detach(), at::tensor({0.5f, 2.0f})));
  scaler.Update();
  EXPECT_EQ(scaler.scale(), 1024.0);

  p.mutable_grad() = at::tensor({NAN, 1.0f});
  EXPECT_FALSE(scaler.Step(**opt, 0.5));
  EXPECT_TRUE(at::equal(p.detach(), at::tensor({0.5f, 2.0f})));  // untouched
  scaler.Update();
  EXPECT_EQ(scaler.scale(), 512.0);
  EXPECT_EQ(scaler.skipped_steps(), 1);

  p.mutable_grad() = at::tensor({INFINITY, 1.0f});
  EXPECT_TRUE(scaler.Unscale({p}));
  EXPECT_TRUE(scaler.Unscale({p}));  // idempotent within an iteration
  EXPECT_FALSE(scaler.Step(**opt, 0.5));
  scaler.Update();
  EXPECT_EQ(scaler.scale(), 256.0);
  EXPECT_EQ(scaler.skipped_steps(), 2);
}

TEST(LossScaler, HysteresisAndFloorAndDisabled) {
  LossScalerOptions o;
  o.init_scale = 8;
  o.hysteresis = 2;
  o.min_scale = 2;
  LossScaler s(o);
  s.Update(true);  // tolerated
  EXPECT_EQ(s.scale(), 8.0);
  s.Update(true);
  EXPECT_EQ(s.scale(), 4.0);
  s.Update(true);
  EXPECT_EQ(s.scale(), 2.0);
  s.Update(true);  // floor
  EXPECT_EQ(s.scale(), 2.0);

  LossScalerOptions off;
  off.enabled = false;
  LossScaler d(off);
  EXPECT_EQ(d.scale(), 1.0);
  at::Tensor p = at::ones({1}).requires_grad_(true);
  p.mutable_grad() = at::full({1}, INFINITY);
  EXPECT_FALSE(d.Unscale({p}));
}

TEST(LossScaler, StateRoundTripAndBadStates) {
  LossScaler a(LossScalerOptions{});
  a.Update(true);
  a.Update(false);
  LossScaler b(LossScalerOptions{});
  ASSERT_TRUE(b.LoadState(nlohmann::json::parse(a.SaveState().dump())).ok());
  EXPECT_EQ(b.scale(), a.scale());
  EXPECT_EQ(b.growth_tracker(), 1);
  for (const char* key : {"scale", "growth_tracker", "hysteresis_left", "skipped_steps"}) {
    nlohmann::json bad = a.SaveState();
    bad[key] = -1;
    absl::Status st = b.LoadState(bad);
    ASSERT_FALSE(st.ok()) << key;
    EXPECT_NE(std::string(st.message()).find(key), std::string::npos) << st;
  }
  EXPECT_FALSE(b.LoadState(nlohmann::json::array()).ok());
}

}  // namespace
}  // namespace cf::optim
