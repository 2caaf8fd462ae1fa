// RunSetup and Train() in-process on synthetic data: the EMA decay warmup is timm's formula with
// the flags' gamma and power, and progressive resizing with per-stage batch sizes trains every
// epoch to its end (the run's length is the sum of each epoch's own steps; warmup and step decay
// given in epochs land on the cumulative step of that epoch).
#include "convforever/train/run_setup.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "convforever/train/trainer.h"

namespace cf::train {
namespace {

std::string TempDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp ? tmp : "/tmp") + "/run_setup_test_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TrainerOptions Small(const std::string& name) {
  TrainerOptions o;
  o.data = "synthetic";
  o.synthetic_samples = 64;
  o.synthetic_classes = 4;
  o.image_size = 16;
  o.micro_batch_size = 16;
  o.model = "simple_cnn";
  o.num_workers = 0;
  o.threads = 1;
  o.tensorboard = false;
  o.log_every_steps = 1;
  o.run_dir = TempDir(name);
  o.seed = 3;
  return o;
}

// timm's ModelEmaV3.get_decay: 1 - (1 + step / warmup_gamma) ** -warmup_power, capped at decay.
double TimmDecay(double decay, double gamma, double power, int64_t step) {
  return std::min(decay, 1.0 - std::pow(1.0 + static_cast<double>(step) / gamma, -power));
}

TEST(RunSetupEma, WarmupIsTimmsFormulaWithTheFlagsGammaAndPower) {
  TrainerOptions o = Small("ema");
  o.ema_decay = 0.999;
  o.ema_warmup_gamma = 10;
  o.ema_warmup_power = 0.75;
  absl::StatusOr<std::unique_ptr<RunSetup>> run = RunSetup::Create(o);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_NE((*run)->ema(), nullptr);
  for (int64_t step : {1, 2, 10, 100, 1000, 100000}) {
    EXPECT_NEAR((*run)->ema()->DecayAt(step), TimmDecay(0.999, 10, 0.75, step), 1e-15) << step;
  }
  // timm's defaults: gamma 1, power 2/3.
  o.ema_warmup_gamma = 1;
  o.ema_warmup_power = 2.0 / 3.0;
  run = RunSetup::Create(o);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_NEAR((*run)->ema()->DecayAt(7), TimmDecay(0.999, 1, 2.0 / 3.0, 7), 1e-15);
  // No warmup: the decay itself from the first step.
  o.ema_warmup_gamma = 0;
  run = RunSetup::Create(o);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ((*run)->ema()->DecayAt(1), 0.999);
}

// 64 samples: epochs 0-1 in batches of 16 (4 steps), epochs 2-3 in batches of 8 (8 steps).
TrainerOptions Progressive(const std::string& name) {
  TrainerOptions o = Small(name);
  o.epochs = 4;
  o.progressive_resize = "0:16:16,2:16:8";
  return o;
}

TEST(RunSetupProgressive, StepsAreTheSumOfEachEpochsOwn) {
  TrainerOptions o = Progressive("progressive_setup");
  o.lr = 0.1;
  o.min_lr = 0.001;
  o.warmup_epochs = 3;  // epochs 0-2: 4 + 4 + 8 steps
  absl::StatusOr<std::unique_ptr<RunSetup>> run = RunSetup::Create(o);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ((*run)->total_steps(), 4 + 4 + 8 + 8);
  EXPECT_LT((*run)->LearningRate(15), 0.1);
  EXPECT_DOUBLE_EQ((*run)->LearningRate(16), 0.1);  // warmup ends with epoch 2
  EXPECT_DOUBLE_EQ((*run)->LearningRate(24), 0.001);  // the cosine reaches min_lr at the end

  o.lr_scheduler_type = "step";
  o.warmup_epochs = 0;
  o.step_decay_epochs = 3;  // decays when epoch 3 begins: step 16, not 3 x epoch 0's 4 = 12
  o.step_decay_rate = 0.5;
  run = RunSetup::Create(o);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_DOUBLE_EQ((*run)->LearningRate(15), 0.1);
  EXPECT_DOUBLE_EQ((*run)->LearningRate(16), 0.05);
}

// The run trains every epoch to its last batch and stops there: not cut short in epoch 2 (4 x
// epoch 0's 4 steps), not running into an epoch 4.
TEST(RunSetupProgressive, TrainingEndsWithTheLastEpoch) {
  TrainerOptions o = Progressive("progressive_train");
  o.lr = 0.01;
  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->total_steps, 24);
  EXPECT_EQ(r->steps, 24);
  EXPECT_EQ(r->step_losses.size(), 24u);
  std::ifstream in(r->checkpoint_dir + "/trainer_state.json");
  ASSERT_TRUE(in) << r->checkpoint_dir;
  const nlohmann::json state = nlohmann::json::parse(in);
  EXPECT_EQ(state.at("epoch").get<int64_t>(), 3);
  EXPECT_EQ(state.at("loader").at("batches_consumed").get<int64_t>(), 8);
}

}  // namespace
}  // namespace cf::train
