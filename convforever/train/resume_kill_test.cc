// A data-parallel job killed with SIGKILL (every process at once, as when a machine loses power)
// and resumed with --resume=auto continues exactly: 2 Gloo ranks through the real launcher, with
// the parts that carry hidden state across a resume switched on together: drop path (each rank
// draws its own masks from its own RNG), EMA of the weights, MixUp/CutMix (batch mixing from the
// loader's seeds), evaluation every few steps with the best checkpoint kept apart from rotation.
// The resumed job's per-step losses and evaluations equal an uninterrupted job's, and best.json
// still points at the best evaluation, whose checkpoint rotation kept.
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "convforever/train/testing/trainer_harness.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

using testing::KillTree;
using testing::LaunchArgs;
using testing::Outcome;
using testing::ReadJson;
using testing::RunLaunched;
using testing::Spawn;
using testing::StepLosses;
using testing::TempDir;
using testing::Wait;
using testing::With;

constexpr int kSteps = 24;

// A small ConvNeXt (it has drop path and layer scale) on synthetic data, deterministic
// single-threaded math, every regularizer whose state a resume must carry.
std::vector<std::string> Job(const std::string& run_dir) {
  return {"--data=synthetic", "--synthetic_samples=256", "--synthetic_classes=16",
          "--image_size=16", "--model=convnext_pico_fmnist", "--widths=8,16,32",
          "--micro_batch_size=4", "--num_workers=1", "--threads=1", "--log_every_steps=1",
          "--tensorboard=false", "--seed=11", "--optimizer=adamw", "--lr=1e-3",
          "--lr_scheduler_type=cosine", "--warmup_steps=4", "--drop_path_rate=0.3",
          "--ema_decay=0.8", "--mixup=0.4", "--cutmix=1.0", "--label_smoothing=0.1",
          "--max_steps=" + std::to_string(kSteps), "--checkpoint_every_steps=4",
          "--eval_every_steps=4", "--keep_checkpoints=1", "--run_dir=" + run_dir};
}

std::string Ckpt(const std::string& run_dir, int step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08d", step);
  return run_dir + "/checkpoints/" + name;
}

// step -> the evaluation scalars logged at that step (raw and EMA), from metrics.jsonl.
std::map<int64_t, std::map<std::string, double>> Evaluations(const std::string& run_dir) {
  std::map<int64_t, std::map<std::string, double>> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("kind", "") != "metrics" || !j.contains("eval/top1")) continue;
    auto& row = out[j.at("step").get<int64_t>()];
    for (const char* k : {"eval/loss", "eval/top1", "eval_ema/loss", "eval_ema/top1"}) {
      if (j.contains(k)) row[k] = j.at(k).get<double>();
    }
  }
  return out;
}

TEST(TrainerKillResume, TwoRanksKilledMidRunResumeToTheSameLossesAndBest) {
  const std::string dir = TempDir("kill_resume");
  Outcome full = RunLaunched(2, Job(dir + "/full"), dir + "/full.log");
  ASSERT_EQ(full.exit_code, 0) << full.output;

  // Killed once the checkpoint of step 12 is complete (the run is then somewhere past it).
  const std::string killed_dir = dir + "/killed";
  const pid_t pid = Spawn(LaunchArgs(2, Job(killed_dir)), dir + "/killed.log");
  const std::string done = Ckpt(killed_dir, 12) + "/DONE";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (!fs::exists(done) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  KillTree(pid);
  Outcome killed = Wait(pid, dir + "/killed.log");
  ASSERT_TRUE(fs::exists(done)) << killed.output;
  ASSERT_FALSE(fs::exists(killed_dir + "/summary.json")) << "the job ended before it was killed";

  Outcome resumed = RunLaunched(2, With(Job(killed_dir), {"--resume=auto"}), dir + "/resumed.log");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  ASSERT_NE(resumed.output.find("resumed at step"), std::string::npos) << resumed.output;

  // Rank 0 logs; its losses after the resume depend on rank 1's gradients too (the average), so
  // rank 1's drop-path masks must continue where they were.
  const std::map<int64_t, double> expected = StepLosses(dir + "/full");
  const std::map<int64_t, double> actual = StepLosses(killed_dir);
  ASSERT_EQ(expected.size(), static_cast<size_t>(kSteps));
  ASSERT_EQ(actual.size(), static_cast<size_t>(kSteps));
  for (const auto& [step, loss] : expected) EXPECT_EQ(actual.at(step), loss) << "step " << step;

  const auto expected_evals = Evaluations(dir + "/full");
  const auto actual_evals = Evaluations(killed_dir);
  ASSERT_EQ(expected_evals.size(), static_cast<size_t>(kSteps / 4));
  EXPECT_EQ(actual_evals, expected_evals);

  // best.json names the best evaluation's step in both, and that checkpoint survived rotation
  // (--keep_checkpoints=1 deletes every other older one).
  const Json best_full = ReadJson(dir + "/full/checkpoints/best.json");
  const Json best = ReadJson(killed_dir + "/checkpoints/best.json");
  EXPECT_EQ(best.dump(), best_full.dump());
  // The trainer's rule: the best of raw and EMA top-1, the first step reaching it.
  int64_t best_step = 0;
  double best_top1 = -1;
  for (const auto& [step, row] : expected_evals) {
    const double top1 = std::max(row.at("eval/top1"), row.at("eval_ema/top1"));
    if (top1 > best_top1) best_top1 = top1, best_step = step;
  }
  EXPECT_EQ(best.value("step", int64_t{-1}), best_step) << best.dump();
  EXPECT_TRUE(fs::exists(Ckpt(killed_dir, static_cast<int>(best_step)) + "/DONE"));
}

}  // namespace
}  // namespace cf::train
