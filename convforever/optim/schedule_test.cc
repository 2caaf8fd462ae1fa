// Schedules against torch.optim.lr_scheduler (OneCycleLR, SequentialLR(LinearLR ->
// CosineAnnealingLR), StepLR) to 1e-9 relative, plus hand-checked warmup forms, DeepSpeed's
// schedules, and every invalid option.
#include "convforever/optim/schedule.h"

#include <cmath>

#include "convforever/optim/test_util.h"
#include "gtest/gtest.h"

namespace cf::optim {
namespace {

ScheduleOptions FromCase(const nlohmann::json& c) {
  ScheduleOptions o;
  o.type = c["type"];
  o.total_steps = c["total_steps"];
  if (o.type == "onecycle") {
    o.base_lr = c["max_lr"];
    o.pct_start = c["pct_start"];
    o.anneal = c["anneal"];
    o.div_factor = c["div_factor"];
    o.final_div_factor = c["final_div_factor"];
    o.three_phase = c["three_phase"];
  } else if (o.type == "cosine") {
    o.base_lr = c["base_lr"];
    o.warmup_steps = c["warmup_steps"];
    o.warmup_start_factor = c["warmup_start_factor"];
    o.min_lr = c["min_lr"];
  } else {
    o.base_lr = c["base_lr"];
    o.step_size = c["step_size"];
    o.gamma = c["gamma"];
  }
  return o;
}

TEST(Schedule, MatchesTorchSchedulers) {
  const nlohmann::json fx = testing::ReadFixture("optim_schedules.json");
  ASSERT_GE(fx["cases"].size(), 7u);
  for (const auto& c : fx["cases"]) {
    const ScheduleOptions o = FromCase(c);
    ASSERT_TRUE(ValidateSchedule(o).ok()) << c["name"] << ": " << ValidateSchedule(o);
    const auto& lrs = c["lrs"];
    for (size_t s = 0; s < lrs.size(); ++s) {
      const double want = lrs[s];
      EXPECT_NEAR(LearningRate(o, s), want, 1e-9 * std::abs(want))
          << c["name"] << " step " << s;
    }
  }
}

TEST(Schedule, WarmupInEpochsAndHoldAfterEnd) {
  ScheduleOptions o;
  o.type = "cosine";
  o.base_lr = 1.0;
  o.total_steps = 100;
  o.warmup_epochs = 0.5;
  o.steps_per_epoch = 20;
  ASSERT_TRUE(ValidateSchedule(o).ok());
  EXPECT_EQ(WarmupSteps(o), 10);
  EXPECT_DOUBLE_EQ(LearningRate(o, 0), 0.0);
  EXPECT_DOUBLE_EQ(LearningRate(o, 5), 0.5);
  EXPECT_DOUBLE_EQ(LearningRate(o, 10), 1.0);
  EXPECT_DOUBLE_EQ(LearningRate(o, 55), 0.5);
  EXPECT_NEAR(LearningRate(o, 100), 0.0, 1e-15);
  EXPECT_NEAR(LearningRate(o, 5000), 0.0, 1e-15);
}

// MultiStepLR (torch.optim.lr_scheduler.MultiStepLR(milestones=[3, 7], gamma=0.5)): the lr
// halves at each milestone, for decays at the boundaries of epochs of different lengths.
TEST(Schedule, StepDecayAtMilestones) {
  ScheduleOptions o;
  o.type = "step";
  o.base_lr = 1.0;
  o.gamma = 0.5;
  o.step_size = 1000;  // ignored when milestones are given
  o.milestones = {3, 7};
  ASSERT_TRUE(ValidateSchedule(o).ok());
  const double want[] = {1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25};
  for (int s = 0; s < 9; ++s) EXPECT_DOUBLE_EQ(LearningRate(o, s), want[s]) << "step " << s;
  o.milestones = {7, 3};
  EXPECT_FALSE(ValidateSchedule(o).ok());
}

TEST(Schedule, ConstantLinearAndLogWarmup) {
  ScheduleOptions o;
  o.type = "constant";
  o.base_lr = 0.2;
  EXPECT_DOUBLE_EQ(LearningRate(o, 12345), 0.2);
  // DeepSpeed WarmupLR, log: lr = min + (max - min) * log(s + 1) / log(W).
  o.warmup_steps = 100;
  o.warmup_type = "log";
  o.warmup_start_factor = 0.1;
  ASSERT_TRUE(ValidateSchedule(o).ok());
  EXPECT_DOUBLE_EQ(LearningRate(o, 0), 0.02);
  EXPECT_NEAR(LearningRate(o, 9), 0.02 + 0.18 * std::log(10.0) / std::log(100.0), 1e-15);
  EXPECT_DOUBLE_EQ(LearningRate(o, 100), 0.2);
  // DeepSpeed WarmupDecayLR: linear to min_lr at total_steps.
  o = {};
  o.type = "linear";
  o.base_lr = 1.0;
  o.min_lr = 0.2;
  o.total_steps = 30;
  o.warmup_steps = 10;
  ASSERT_TRUE(ValidateSchedule(o).ok());
  EXPECT_DOUBLE_EQ(LearningRate(o, 20), 0.6);
  EXPECT_DOUBLE_EQ(LearningRate(o, 30), 0.2);
}

TEST(Schedule, DeepSpeedOneCycle) {
  ScheduleOptions o;
  o.type = "ds_onecycle";
  o.base_lr = 1.0;
  o.min_lr = 0.1;
  o.cycle_first_step_size = 10;
  o.decay_step_size = 5;
  o.decay_lr_rate = 1.0;
  ASSERT_TRUE(ValidateSchedule(o).ok());
  EXPECT_DOUBLE_EQ(LearningRate(o, 0), 0.1);
  EXPECT_DOUBLE_EQ(LearningRate(o, 5), 0.55);
  EXPECT_DOUBLE_EQ(LearningRate(o, 10), 1.0);
  EXPECT_DOUBLE_EQ(LearningRate(o, 15), 0.55);
  EXPECT_DOUBLE_EQ(LearningRate(o, 20), 0.1);
  EXPECT_DOUBLE_EQ(LearningRate(o, 25), 0.05);
}

// The LR range test's sweep: ExponentialLR(gamma = (max/min)^(1/(T-1))) from min_lr, reaching
// base_lr exactly at the last step and holding it after.
TEST(Schedule, ExponentialSweepsFromMinToBase) {
  ScheduleOptions o;
  o.type = "exponential";
  o.min_lr = 1e-7;
  o.base_lr = 10;
  o.total_steps = 101;
  ASSERT_TRUE(ValidateSchedule(o).ok()) << ValidateSchedule(o);
  const double gamma = std::pow(1e8, 1.0 / 100);
  double lr = 1e-7;
  for (int64_t s = 0; s < 101; ++s) {
    EXPECT_NEAR(LearningRate(o, s), lr, 1e-9 * lr) << "step " << s;
    lr *= gamma;
  }
  EXPECT_NEAR(LearningRate(o, 50), 1e-3, 1e-12);
  EXPECT_DOUBLE_EQ(LearningRate(o, 100), 10.0);
  EXPECT_DOUBLE_EQ(LearningRate(o, 500), 10.0);
  ScheduleOptions bad = o;
  bad.min_lr = 0;
  EXPECT_NE(std::string(ValidateSchedule(bad).message()).find("min_lr"), std::string::npos);
  bad = o;
  bad.total_steps = 1;
  EXPECT_NE(std::string(ValidateSchedule(bad).message()).find("total_steps"), std::string::npos);
  bad = o;
  bad.warmup_steps = 5;
  EXPECT_NE(std::string(ValidateSchedule(bad).message()).find("warmup"), std::string::npos);
}

TEST(Schedule, RejectsBadOptions) {
  auto expect_error = [](ScheduleOptions o, const std::string& word) {
    absl::Status st = ValidateSchedule(o);
    ASSERT_FALSE(st.ok()) << word;
    EXPECT_NE(std::string(st.message()).find(word), std::string::npos) << st;
  };
  ScheduleOptions base;
  base.total_steps = 100;
  ScheduleOptions o = base;
  o.type = "poly";
  expect_error(o, "poly");
  o = base;
  o.total_steps = 0;
  expect_error(o, "total_steps");
  o = base;
  o.warmup_steps = 100;
  expect_error(o, "warmup_steps");
  o = base;
  o.warmup_epochs = 1;
  expect_error(o, "steps_per_epoch");
  o = base;
  o.min_lr = 1.0;
  expect_error(o, "min_lr");
  o = base;
  o.base_lr = -1;
  expect_error(o, "base_lr");
  o = base;
  o.warmup_type = "exp";
  expect_error(o, "warmup_type");
  o = base;
  o.warmup_start_factor = 2;
  expect_error(o, "warmup_start_factor");
  o = base;
  o.type = "onecycle";
  o.pct_start = 1.5;
  expect_error(o, "pct_start");
  o.pct_start = 0.005;  // first phase shorter than one step
  expect_error(o, "pct_start");
  o.pct_start = 0.3;
  o.div_factor = 0;
  expect_error(o, "div_factor");
  o.div_factor = 25;
  o.anneal = "poly";
  expect_error(o, "anneal");
  o = base;
  o.type = "step";
  o.step_size = 0;
  expect_error(o, "step_size");
  o.step_size = 3;
  o.gamma = 0;
  expect_error(o, "gamma");
  o = base;
  o.type = "ds_onecycle";
  o.cycle_first_step_size = 0;
  expect_error(o, "cycle_first_step_size");
}

}  // namespace
}  // namespace cf::optim
