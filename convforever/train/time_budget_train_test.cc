// --time_budget through the trainer binary on synthetic data: the plan follows from the rate it
// logs and fits the budget, the lr schedule is complete over the planned steps (read back from
// metrics.jsonl), a resumed run continues the same plan step for step, --epochs/--max_steps cap
// the plan, two launched ranks agree on one plan, and the refusals name the flag. No assertion on
// wall time beyond a generous bound: the plan's arithmetic is checked from its own figures.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "convforever/train/testing/trainer_harness.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

namespace fs = std::filesystem;

using testing::Outcome;
using testing::ReadJson;
using testing::RunLaunched;
using testing::RunTrainer;
using testing::StepLosses;
using testing::TempDir;
using testing::With;

constexpr double kLr = 0.01, kMinLr = 1e-4;
// Longer than the timing window (at most 155 steps): the plan comes during the warmup, as in the
// recipe (200), so every step's lr is the planned schedule's.
constexpr int64_t kWarmup = 200;

// Synthetic data, epochs of 256 steps, a cap (--max_steps=20000; --epochs=1000 is longer) far past
// what the budget allows (a run that ignored its plan ends there, not after 1000 epochs); every
// step logged.
std::vector<std::string> BudgetRun(const std::string& run_dir, const std::string& budget) {
  return {"--data=synthetic",        "--synthetic_samples=2048", "--synthetic_classes=4",
          "--image_size=16",         "--micro_batch_size=8",     "--num_workers=1",
          "--threads=1",             "--log_every_steps=1",      "--tensorboard=false",
          "--model=simple_cnn",      "--run_dir=" + run_dir,     "--seed=7",
          "--epochs=1000",           "--max_steps=20000",        "--optimizer=adamw",        "--lr=0.01",
          "--min_lr=1e-4",           "--lr_scheduler_type=cosine", "--warmup_steps=200",
          "--checkpoint_every_steps=200", "--keep_checkpoints=1000",
          "--time_budget=" + budget};
}

// step -> train/lr from metrics.jsonl.
std::map<int64_t, double> StepLrs(const std::string& run_dir) {
  std::map<int64_t, double> lrs;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("train/lr")) continue;
    lrs[j["step"].get<int64_t>()] = j["train/lr"].get<double>();
  }
  return lrs;
}

// The recipe's schedule over `total` steps: linear warmup, cosine to kMinLr (optim/schedule.h).
// metrics.jsonl's record of step s (1-based) has the lr of 0-based step s - 1.
double CosineLr(int64_t step0, int64_t total, int64_t warmup) {
  if (step0 < warmup) return kLr * static_cast<double>(step0) / static_cast<double>(warmup);
  const double span = static_cast<double>(total - warmup);
  return kMinLr + (kLr - kMinLr) * (1 + std::cos(M_PI * static_cast<double>(step0 - warmup) / span)) / 2;
}

// The plan fits the budget by its own figures, ends the run, and the schedule ends with it.
void ExpectCompletePlan(const std::string& run_dir, double budget_seconds) {
  const nlohmann::json s = ReadJson(run_dir + "/summary.json");
  ASSERT_TRUE(s.contains("time_budget")) << s;
  const nlohmann::json& p = s["time_budget"];
  ASSERT_TRUE(p.value("planned", false)) << p;
  EXPECT_DOUBLE_EQ(p.value("budget_seconds", 0.0), budget_seconds);
  const int64_t total = p.value("total_steps", 0), at = p.value("planned_at_step", 0);
  EXPECT_FALSE(p.value("capped", true)) << p;
  EXPECT_EQ(s.value("total_steps", 0), total);
  EXPECT_EQ(s.value("steps", 0), total);
  EXPECT_TRUE(s.value("completed", false)) << s;
  // The arithmetic: the prediction from the measured rate is within the budget less the margin,
  // and the planned count is the largest that is (10 more steps, the rounding, would not be).
  const double step_s = p.value("step_seconds", 0.0), eval_s = p.value("eval_seconds", 0.0);
  const double ckpt_s = p.value("checkpoint_seconds", 0.0);
  EXPECT_GT(step_s, 0);
  EXPECT_NEAR(p.value("images_per_sec", 0.0), 8 / step_s, 1e-6 * 8 / step_s);
  const double expected = p.value("elapsed_seconds", 0.0) + static_cast<double>(total - at) * step_s +
                          p.value("evals", 0) * eval_s + p.value("checkpoints", 0) * ckpt_s;
  EXPECT_NEAR(p.value("expected_seconds", 0.0), expected, 1e-6 * expected) << p;
  EXPECT_LE(expected, 0.96 * budget_seconds) << p;
  EXPECT_GT(expected + 11 * step_s + eval_s + ckpt_s, 0.96 * budget_seconds) << p;
  // The evaluations the plan counted: one per epoch of 256 steps after the plan, and the final one.
  EXPECT_EQ(p.value("evals", 0), (total - 1) / 256 - at / 256 + 1) << p;
  // Generous: a loaded machine may be slower than it measured, never 3x the budget.
  EXPECT_LT(s.value("wall_seconds", 1e9), 3 * budget_seconds) << s;
  // The schedule is the one of `total` steps: warmup, then cosine down to min_lr at the last step.
  ASSERT_LT(at, kWarmup) << "planned after the warmup: the steps between ran the cap's cosine";
  const std::map<int64_t, double> lrs = StepLrs(run_dir);
  ASSERT_EQ(lrs.rbegin()->first, total) << "metrics.jsonl does not end at the planned step";
  for (const auto& [step, lr] : lrs) {
    EXPECT_NEAR(lr, CosineLr(step - 1, total, kWarmup), 1e-9) << "step " << step << " of " << total;
  }
  const double last = lrs.rbegin()->second;
  EXPECT_NEAR(last, kMinLr, (kLr - kMinLr) * 1e-4) << "the cosine did not reach --min_lr";
}

TEST(TrainerTimeBudget, PlansACompleteScheduleWithinTheBudget) {
  const std::string dir = TempDir("budget");
  Outcome r = RunTrainer(BudgetRun(dir + "/run", "8s"), dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("time budget 8s: measured "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("expected end "), std::string::npos) << r.output;
  ExpectCompletePlan(dir + "/run", 8);
}

// A checkpoint after the plan, resumed in a new run directory: the resumed run keeps the plan
// (not the cap, not a new measurement) and reproduces the original run's losses step for step.
TEST(TrainerTimeBudget, ResumeContinuesTheSamePlan) {
  const std::string dir = TempDir("budget_resume");
  Outcome full = RunTrainer(BudgetRun(dir + "/full", "6s"), dir);
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const nlohmann::json plan = ReadJson(dir + "/full/summary.json")["time_budget"];
  const int64_t total = plan.value("total_steps", 0);
  ASSERT_GT(total, 400) << "too few steps for a checkpoint at step 400 after the plan: " << plan;
  const std::string ckpt = dir + "/full/checkpoints/step-00000400";
  ASSERT_TRUE(fs::exists(ckpt + "/DONE"));
  EXPECT_EQ(ReadJson(ckpt + "/trainer_state.json")["time_budget"].value("total_steps", 0), total);

  fs::create_directories(dir + "/resumed/checkpoints");
  fs::copy(ckpt, dir + "/resumed/checkpoints/step-00000400", fs::copy_options::recursive);
  Outcome resumed = RunTrainer(With(BudgetRun(dir + "/resumed", "6s"), {"--resume=auto"}), dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming the plan of " + std::to_string(total) + " steps"),
            std::string::npos) << resumed.output;
  EXPECT_EQ(resumed.output.find("measured "), std::string::npos) << "the resumed run planned again";
  const nlohmann::json s = ReadJson(dir + "/resumed/summary.json");
  EXPECT_EQ(s.value("steps", 0), total);
  const std::map<int64_t, double> expected = StepLosses(dir + "/full");
  const std::map<int64_t, double> actual = StepLosses(dir + "/resumed");
  ASSERT_EQ(static_cast<int64_t>(actual.size()), total - 400);
  for (const auto& [step, loss] : actual) EXPECT_EQ(loss, expected.at(step)) << "step " << step;
  const std::map<int64_t, double> lrs = StepLrs(dir + "/resumed");
  EXPECT_EQ(lrs.rbegin()->first, total);
  EXPECT_DOUBLE_EQ(lrs.rbegin()->second, StepLrs(dir + "/full").rbegin()->second);
}

// --max_steps shorter than the budget allows: the plan is capped, the run ends at --max_steps.
TEST(TrainerTimeBudget, MaxStepsCapsThePlan) {
  const std::string dir = TempDir("budget_cap");
  // Past the timing window (at most 155 steps), so the plan is made and capped.
  Outcome r = RunTrainer(With(BudgetRun(dir + "/run", "1h"), {"--max_steps=300"}), dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json s = ReadJson(dir + "/run/summary.json");
  EXPECT_EQ(s.value("steps", 0), 300);
  EXPECT_TRUE(s["time_budget"].value("capped", false)) << s;
  EXPECT_EQ(s["time_budget"].value("total_steps", 0), 300) << s;
  EXPECT_NEAR(StepLrs(dir + "/run").at(300), CosineLr(299, 300, kWarmup), 1e-9);
}

// Two ranks measure different step times; they plan from the slowest and run the same steps (a
// disagreement would leave one rank waiting in a collective until the timeout).
TEST(TrainerTimeBudget, TwoRanksAgreeOnOnePlan) {
  const std::string dir = TempDir("budget_ranks");
  Outcome r = RunLaunched(2, With(BudgetRun(dir + "/run", "8s"), {"--dist_timeout_s=60"}),
                          dir + "/ranks.log");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json s = ReadJson(dir + "/run/summary.json");
  EXPECT_EQ(s.value("world_size", 0), 2);
  const nlohmann::json& p = s["time_budget"];
  EXPECT_EQ(s.value("steps", 0), p.value("total_steps", -1)) << s;
  EXPECT_NEAR(p.value("images_per_sec", 0.0), 16 / p.value("step_seconds", 1.0), 1e-6) << p;
}

TEST(TrainerTimeBudget, RefusalsNameTheFlag) {
  const std::string dir = TempDir("budget_refusals");
  Outcome bare = RunTrainer(BudgetRun(dir + "/bare", "8"), dir);
  EXPECT_EQ(bare.exit_code, 2) << bare.output;
  EXPECT_NE(bare.output.find("--time_budget=8: '8' has no unit"), std::string::npos) << bare.output;
  EXPECT_NE(bare.output.find("90s, 8m, 1h30m or 1.5h"), std::string::npos) << bare.output;

  Outcome stages = RunTrainer(With(BudgetRun(dir + "/stages", "20s"), {"--progressive_resize=0:16,2:24"}), dir);
  EXPECT_EQ(stages.exit_code, 1) << stages.output;
  EXPECT_NE(stages.output.find("--time_budget: cannot be combined with --progressive_resize"),
            std::string::npos) << stages.output;
  EXPECT_FALSE(fs::exists(dir + "/stages/checkpoints")) << "refused after starting work";

  // A budget spent before the plan can be made: the error says so and names the flag.
  Outcome tiny = RunTrainer(BudgetRun(dir + "/tiny", "0.01s"), dir);
  EXPECT_EQ(tiny.exit_code, 1) << tiny.output;
  EXPECT_NE(tiny.output.find("raise --time_budget"), std::string::npos) << tiny.output;
}

}  // namespace
}  // namespace cf::train
