#include "convforever/train/time_budget.h"

#include <string>

#include "gtest/gtest.h"

namespace cf::train {
namespace {

TEST(ParseTimeBudget, AcceptsHoursMinutesSecondsAndDecimals) {
  EXPECT_DOUBLE_EQ(*ParseTimeBudget("90s"), 90);
  EXPECT_DOUBLE_EQ(*ParseTimeBudget("8m"), 480);
  EXPECT_DOUBLE_EQ(*ParseTimeBudget("1h30m"), 5400);
  EXPECT_DOUBLE_EQ(*ParseTimeBudget("1.5h"), 5400);
  EXPECT_DOUBLE_EQ(*ParseTimeBudget("2h5m30s"), 7530);
  EXPECT_DOUBLE_EQ(*ParseTimeBudget("0.5s"), 0.5);
}

TEST(ParseTimeBudget, RefusesWithTheFlagAndTheForms) {
  for (const char* bad : {"8", "480", "", "8x", "m", "-5m", "0s", "0h0m", "30s1m", "1m1m", "1.2.3h",
                          "8 m", "8min"}) {
    absl::StatusOr<double> r = ParseTimeBudget(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "' was accepted as " << *r;
    const std::string msg(r.status().message());
    EXPECT_NE(msg.find("--time_budget="), std::string::npos) << msg;
    EXPECT_NE(msg.find("90s, 8m, 1h30m or 1.5h"), std::string::npos) << msg;
  }
  EXPECT_NE(std::string(ParseTimeBudget("8").status().message()).find("'8' has no unit"), std::string::npos);
}

TEST(FormatBudget, WritesWhatTheParserReads) {
  for (double s : {90.0, 480.0, 5400.0, 7530.0, 3600.0, 3605.0, 20.0}) {
    EXPECT_DOUBLE_EQ(*ParseTimeBudget(FormatBudget(s)), s) << FormatBudget(s);
  }
  EXPECT_EQ(FormatBudget(480), "8m");
  EXPECT_EQ(FormatBudget(5400), "1h30m");
  EXPECT_EQ(FormatBudget(90), "1m30s");
}

TEST(StepWindow, WarmsUpThenTimesUntilEnough) {
  StepWindow w(/*first_step=*/10, /*budget_seconds=*/1000);
  EXPECT_FALSE(w.Times(14));
  EXPECT_TRUE(w.Times(15));
  for (int i = 0; i < StepWindow::kMaxTimed - 1; ++i) w.Add(0.1);
  EXPECT_FALSE(w.Enough());  // 5.9 s, under 5% of 1000 s
  w.Add(0.1);
  EXPECT_TRUE(w.Enough());
  EXPECT_NEAR(w.seconds_per_step(), 0.1, 1e-12);
  // A small budget: 5 slow steps are enough once they took 5% of it.
  StepWindow slow(0, 20);
  for (int i = 0; i < 4; ++i) slow.Add(1.0);
  EXPECT_FALSE(slow.Enough());
  slow.Add(1.0);
  EXPECT_TRUE(slow.Enough());
}

BudgetInputs Inputs() {
  BudgetInputs in;
  in.budget_seconds = 480;
  in.elapsed_seconds = 10;
  in.steps_done = 30;
  in.step_seconds = 0.1;
  in.images_per_step = 128;
  in.eval_seconds = 3;
  in.checkpoint_seconds = 0.5;
  in.cap_steps = 4690;
  in.steps_per_epoch = 469;
  in.warmup_steps = 200;
  return in;
}

TEST(PlanBudget, LargestStepCountThatFitsTheBudgetLessTheMargin) {
  const BudgetInputs in = Inputs();
  absl::StatusOr<BudgetPlan> p = PlanBudget(in);
  ASSERT_TRUE(p.ok()) << p.status();
  // By hand: 480 x 0.96 = 460.8 s; 10 s spent; per epoch of 469 steps 46.9 s + 3.5 s of
  // evaluation and checkpoint. 9 epochs end at step 4221: 10 + 4191 x 0.1 + 9 x 3.5 = 460.6 s
  // (8 periodic + the final, which is at step 4221 itself) fits; 4222 would add a tenth pass.
  EXPECT_EQ(p->total_steps, 4220);  // 4221 rounded down to a multiple of 10
  EXPECT_EQ(p->budget_steps, 4220);
  EXPECT_FALSE(p->capped);
  EXPECT_EQ(p->evals, 9);
  EXPECT_EQ(p->checkpoints, 9);
  EXPECT_NEAR(p->expected_seconds, 10 + 4190 * 0.1 + 9 * 3.5, 1e-9);
  EXPECT_LE(p->expected_seconds, 480 * (1 - kBudgetMargin));
  EXPECT_GT(PredictSeconds(in, p->total_steps + 11), 480 * (1 - kBudgetMargin));
  EXPECT_DOUBLE_EQ(p->images_per_sec, 1280);
  EXPECT_EQ(p->warmup_steps, 200);
  EXPECT_FALSE(p->warmup_shortened);
  EXPECT_EQ(p->planned_at_step, 30);
}

TEST(PlanBudget, TheCapWinsWhenItIsShorter) {
  BudgetInputs in = Inputs();
  in.budget_seconds = 3600;
  absl::StatusOr<BudgetPlan> p = PlanBudget(in);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->total_steps, 4690);
  EXPECT_TRUE(p->capped);
  // What the budget would allow past the cap (a resume with a larger cap takes it): ~33,000.
  EXPECT_GT(p->budget_steps, 30000);
  EXPECT_LE(PredictSeconds(in, p->budget_steps), 3600 * (1 - kBudgetMargin));
  EXPECT_GT(PredictSeconds(in, p->budget_steps + 10), 3600 * (1 - kBudgetMargin));
}

TEST(PlanBudget, EvalIntervalInStepsAndDiLoCoMultiples) {
  BudgetInputs in = Inputs();
  in.eval_every_steps = 100;
  in.multiple_of = 64;
  absl::StatusOr<BudgetPlan> p = PlanBudget(in);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->total_steps % 64, 0);
  int64_t evals = 0;
  PredictSeconds(in, p->total_steps, &evals);
  EXPECT_EQ(evals, (p->total_steps - 1) / 100 + 1);
  EXPECT_LE(p->expected_seconds, 480 * (1 - kBudgetMargin));
}

TEST(PlanBudget, ShortensAWarmupLongerThanThePlan) {
  BudgetInputs in = Inputs();
  in.budget_seconds = 30;  // 28.8 s usable: 10 spent, 3.5 s of final passes, 153 more steps
  absl::StatusOr<BudgetPlan> p = PlanBudget(in);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->total_steps, 180);  // 30 + 153, rounded down
  EXPECT_TRUE(p->warmup_shortened);
  // 200 of 4690 is 4.3%: 8 of 180, but never below the 30 steps already taken.
  EXPECT_EQ(p->warmup_steps, 30);
  in.steps_done = 5;
  in.elapsed_seconds = 5;
  p = PlanBudget(in);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->warmup_steps, std::llround(200.0 * p->total_steps / 4690));
  EXPECT_LT(p->warmup_steps, p->total_steps);
}

TEST(PlanBudget, RefusesWhenNothingFits) {
  BudgetInputs in = Inputs();
  in.elapsed_seconds = 470;
  absl::StatusOr<BudgetPlan> p = PlanBudget(in);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(std::string(p.status().message()).find("raise --time_budget"), std::string::npos) << p.status();
}

TEST(BudgetPlanJson, RoundTripsAndRejectsBrokenPlans) {
  absl::StatusOr<BudgetPlan> p = PlanBudget(Inputs());
  ASSERT_TRUE(p.ok());
  absl::StatusOr<BudgetPlan> back = BudgetPlanFromJson(BudgetPlanJson(*p));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(BudgetPlanJson(*back), BudgetPlanJson(*p));
  nlohmann::json broken = BudgetPlanJson(*p);
  broken.erase("total_steps");
  EXPECT_NE(std::string(BudgetPlanFromJson(broken).status().message()).find("time_budget.total_steps"),
            std::string::npos);
  broken = BudgetPlanJson(*p);
  broken["total_steps"] = 10;  // before the step it was planned at
  EXPECT_FALSE(BudgetPlanFromJson(broken).ok());
}

}  // namespace
}  // namespace cf::train
