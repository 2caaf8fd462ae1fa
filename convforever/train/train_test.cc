// End-to-end tests of the trainer binary on synthetic data: every recipe runs (the "check before
// the real job"), a run killed with SIGKILL and resumed matches an uninterrupted one step for
// step, SIGTERM checkpoints and exits 0, non-finite losses abort with a clear message, bad flags
// are rejected before any work, and data parallel / ZeRO over 2 launched Gloo ranks match.
#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>

#include "convforever/hub/testing/fake_hub.h"
#include "convforever/models/safetensors.h"
#include "gtest/gtest.h"
#include "convforever/train/testing/trainer_harness.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

namespace fs = std::filesystem;

using testing::ExpectSameWeights;
using testing::Outcome;
using testing::ReadFile;
using testing::ReadJson;
using testing::RunLaunched;
using testing::RunTrainer;
using testing::SpawnTrainer;
using testing::StepLosses;
using testing::TempDir;
using testing::Wait;
using testing::With;

// Synthetic data, small images, deterministic single-threaded math.
std::vector<std::string> SmallRun(const std::string& run_dir) {
  return {"--data=synthetic",      "--synthetic_samples=256", "--synthetic_classes=4",
          "--image_size=16",       "--micro_batch_size=8",    "--num_workers=1",
          "--threads=1",           "--log_every_steps=1",     "--tensorboard=false",
          "--model=simple_cnn",    "--run_dir=" + run_dir,    "--seed=7"};
}

class RecipeSmokeTest : public ::testing::TestWithParam<std::string> {};

// Every recipe, 3 steps on synthetic data at a tiny size: flags parse, the model builds, the
// loss is finite, a checkpoint and metrics are written.
TEST_P(RecipeSmokeTest, ThreeStepsOnSyntheticData) {
  const std::string recipe = GetParam();
  const std::string dir = TempDir("smoke_" + recipe);
  Outcome r = RunTrainer({"--flagfile=convforever/train/recipes/" + recipe + ".flags",
                      "--data=synthetic", "--data_dir=", "--synthetic_samples=64",
                      "--synthetic_classes=10", "--image_size=32", "--progressive_resize=",
                      "--micro_batch_size=4", "--max_steps=3", "--num_workers=1",
                      // The recipes' warmup / one-cycle phases are sized for real runs.
                      "--warmup_epochs=0", "--warmup_steps=1", "--onecycle_pct_start=0.5",
                      "--log_every_steps=1", "--run_dir=" + dir + "/run", "--keep_checkpoints=1"},
                     dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("finished after 3 steps"), std::string::npos) << r.output;
  std::map<int64_t, double> losses = StepLosses(dir + "/run");
  ASSERT_EQ(losses.size(), 3u) << r.output;
  for (const auto& [step, loss] : losses) EXPECT_TRUE(std::isfinite(loss)) << "step " << step;
  EXPECT_TRUE(fs::exists(dir + "/run/checkpoints/step-00000003/DONE"));
}

INSTANTIATE_TEST_SUITE_P(AllRecipes, RecipeSmokeTest,
                         ::testing::Values("fashion_mnist", "fashion_mnist_cnn", "cifar100_vit",
                                           "tiny_imagenet_resnet50", "imagenet1k_convnext_t",
                                           "convforever_depth"));

// kill -9 at an arbitrary point after the first checkpoint, then --resume=auto: the per-step
// losses equal those of an uninterrupted run, and every step is logged exactly once.
TEST(TrainerResume, KilledRunResumesToIdenticalLosses) {
  const std::string dir = TempDir("resume");
  const std::vector<std::string> base = With(SmallRun(""), {"--max_steps=40",
                                                            "--checkpoint_every_steps=4",
                                                            "--lr_scheduler_type=cosine",
                                                            "--warmup_steps=5"});
  Outcome full = RunTrainer(With(base, {"--run_dir=" + dir + "/full"}), dir);
  ASSERT_EQ(full.exit_code, 0) << full.output;

  const std::string killed_dir = dir + "/killed";
  const pid_t pid = SpawnTrainer(With(base, {"--run_dir=" + killed_dir}), dir + "/killed.log");
  const std::string first_done = killed_dir + "/checkpoints/step-00000004/DONE";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(first_done) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  kill(pid, SIGKILL);
  Outcome killed = Wait(pid, dir + "/killed.log");
  ASSERT_EQ(killed.signal, SIGKILL) << "the run ended before it could be killed:\n" << killed.output;

  Outcome resumed = RunTrainer(With(base, {"--run_dir=" + killed_dir, "--resume=auto"}), dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed at step"), std::string::npos) << resumed.output;

  const std::map<int64_t, double> expected = StepLosses(dir + "/full");
  const std::map<int64_t, double> actual = StepLosses(killed_dir);
  ASSERT_EQ(expected.size(), 40u);
  ASSERT_EQ(actual.size(), 40u);
  for (const auto& [step, loss] : expected) {
    EXPECT_EQ(actual.at(step), loss) << "step " << step;
  }
}

// A resumed run keeps the best result of the run before it: best.json keeps pointing at the best
// checkpoint (it is not rotated away) when nothing after the resume beats it. The checkpoint's
// best metric is raised to 1.0, which no later evaluation can exceed, so nothing after the resume
// is a new best (a resume that forgot the best took its first evaluation for one).
TEST(TrainerResume, ResumeRemembersTheBestCheckpoint) {
  const std::string dir = TempDir("resume_best");
  const std::string run_dir = dir + "/run";
  const std::vector<std::string> base =
      With(SmallRun(run_dir), {"--eval_every_steps=4", "--checkpoint_every_steps=4",
                               "--keep_checkpoints=1", "--lr_scheduler_type=constant"});
  Outcome first = RunTrainer(With(base, {"--max_steps=4"}), dir);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string best_dir = run_dir + "/checkpoints/step-00000004";
  nlohmann::json state = ReadJson(best_dir + "/trainer_state.json");
  state["best_metric"] = 1.0;
  std::ofstream(best_dir + "/trainer_state.json") << state.dump();
  nlohmann::json best = ReadJson(run_dir + "/checkpoints/best.json");
  ASSERT_EQ(best.value("dir", ""), "step-00000004") << best;
  best["metric"] = 1.0;
  std::ofstream(run_dir + "/checkpoints/best.json") << best.dump();

  Outcome resumed = RunTrainer(With(base, {"--max_steps=12", "--resume=auto"}), dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("best top-1 so far 100.00%"), std::string::npos) << resumed.output;
  best = ReadJson(run_dir + "/checkpoints/best.json");
  EXPECT_EQ(best.value("dir", ""), "step-00000004") << best;
  EXPECT_TRUE(fs::exists(best_dir + "/DONE")) << "the best checkpoint was rotated away";
  EXPECT_TRUE(fs::exists(run_dir + "/checkpoints/step-00000012/DONE"));
  const nlohmann::json summary = ReadJson(run_dir + "/summary.json");
  EXPECT_DOUBLE_EQ(summary.value("best_top1", 0.0), 1.0) << summary;
}

// summary.json after a complete run: the counts agree with the flags and the printed figures,
// and the FLOPs are 6 x MACs x samples.
TEST(TrainerSummary, CompleteRunWritesItsSummary) {
  const std::string dir = TempDir("summary");
  Outcome r = RunTrainer(With(SmallRun(dir + "/run"), {"--max_steps=5"}), dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json s = ReadJson(dir + "/run/summary.json");
  EXPECT_EQ(s.value("format", ""), "convforever.summary/1");
  EXPECT_TRUE(s.value("completed", false)) << s;
  EXPECT_FALSE(s.value("stopped_by_signal", true));
  EXPECT_EQ(s.value("model", ""), "simple_cnn");
  EXPECT_EQ(s.value("steps", 0), 5);
  EXPECT_EQ(s.value("total_steps", 0), 5);
  EXPECT_EQ(s.value("samples_seen", 0), 5 * 8);
  EXPECT_EQ(s.value("world_size", 0), 1);
  EXPECT_GT(s.value("params", 0), 1000);
  const double gmacs = s.value("gmacs_per_image", 0.0);
  EXPECT_GT(gmacs, 0);
  EXPECT_NEAR(s.value("train_flops", 0.0), 6 * gmacs * 1e9 * 40, 1e-6 * 6 * gmacs * 1e9 * 40);
  EXPECT_GT(s.value("wall_seconds", 0.0), 0);
  EXPECT_GT(s.value("images_per_sec", 0.0), 0);
  ASSERT_TRUE(s.contains("final_eval")) << s;
  EXPECT_GT(s["final_eval"].value("samples", 0), 0);
  const double top1 = s["final_eval"].value("top1", -1.0);
  char printed[64];
  std::snprintf(printed, sizeof(printed), "test top-1 %.2f%%", 100 * top1);
  EXPECT_NE(r.output.find(printed), std::string::npos) << printed << "\n" << r.output;
  EXPECT_DOUBLE_EQ(s.value("best_top1", -1.0), top1);
  EXPECT_TRUE(s["final_train_loss"].is_number()) << s;
  EXPECT_FALSE(s.contains("final_eval_ema"));
}

// --profile_steps through the binary: the window's per-op times land in RUN_DIR/profile, with our
// named regions (the data wait, the optimizer step) and LibTorch's ops; a bad window is refused
// before any work, naming the flag.
TEST(TrainerProfile, ProfileStepsWritesTheWindowsOps) {
  const std::string dir = TempDir("profile");
  Outcome r = RunTrainer(With(SmallRun(dir + "/run"), {"--max_steps=5", "--profile_steps=1:3"}), dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json ops = ReadJson(dir + "/run/profile/ops.json");
  EXPECT_EQ(ops.value("steps", 0), 2) << ops;
  std::map<std::string, int64_t> calls;
  for (const auto& op : ops["ops"]) calls[op["name"]] = op["calls"];
  EXPECT_EQ(calls["cf::next_batch"], 2);
  EXPECT_EQ(calls["cf::optimizer_step"], 2);
  EXPECT_GT(calls["aten::convolution_backward"], 0);
  EXPECT_TRUE(fs::exists(dir + "/run/profile/trace.json"));
  EXPECT_NE(r.output.find("profile of steps 1..2"), std::string::npos) << r.output;

  Outcome bad = RunTrainer(With(SmallRun(dir + "/bad"), {"--max_steps=5", "--profile_steps=3:3"}), dir);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--profile_steps=3:3"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(dir + "/bad/checkpoints"));
}

// The LR range test through the binary: the curve and the suggestion are written, the lr rises
// geometrically from the start lr, and nothing of a training run is left behind (no checkpoint,
// no metrics store, no summary).
TEST(TrainerLrFinder, SweepWritesTheCurveAndLeavesNoCheckpoint) {
  const std::string dir = TempDir("lr_finder");
  const std::string run_dir = dir + "/run";
  Outcome r = RunTrainer(With(SmallRun(run_dir), {"--lr_finder", "--lr_finder_steps=30",
                                                  "--lr_finder_start_lr=1e-5",
                                                  "--lr_finder_end_lr=1e3"}),
                         dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("suggested --lr="), std::string::npos) << r.output;
  const nlohmann::json j = ReadJson(run_dir + "/lr_finder.json");
  const double suggested = j.value("suggested_lr", 0.0);
  EXPECT_GE(suggested, 1e-5) << j;
  EXPECT_LE(suggested, j.value("max_lr", 0.0)) << j;
  EXPECT_DOUBLE_EQ(j.value("min_lr", 0.0), 1e-5) << j;
  std::istringstream csv(ReadFile(run_dir + "/lr_finder.csv"));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "step,lr,loss,smoothed_loss");
  std::vector<double> lrs;
  while (std::getline(csv, line)) lrs.push_back(std::stod(line.substr(line.find(',') + 1)));
  ASSERT_EQ(static_cast<int64_t>(lrs.size()), j.value("steps", -1));
  ASSERT_GE(lrs.size(), 5u);
  const double gamma = std::pow(1e8, 1.0 / 29);  // 1e-5 -> 1e3 over 30 steps
  for (size_t i = 1; i < lrs.size(); ++i) EXPECT_NEAR(lrs[i] / lrs[i - 1], gamma, 1e-6) << i;
  EXPECT_EQ(j.value("diverged", false), lrs.size() < 30u) << j;
  EXPECT_FALSE(fs::exists(run_dir + "/metrics.jsonl"));
  EXPECT_FALSE(fs::exists(run_dir + "/summary.json"));
  EXPECT_FALSE(fs::exists(run_dir + "/checkpoints/best.json"));
  if (fs::exists(run_dir + "/checkpoints")) {
    EXPECT_TRUE(fs::is_empty(run_dir + "/checkpoints")) << "the lr finder wrote a checkpoint";
  }
}

TEST(TrainerResume, SigtermCheckpointsAndExitsZero) {
  const std::string dir = TempDir("sigterm");
  const std::string run_dir = dir + "/run";
  const pid_t pid = SpawnTrainer(With(SmallRun(run_dir), {"--max_steps=100000", "--epochs=1000"}),
                          dir + "/log");
  // Wait until training is under way (a metrics record exists), then ask it to stop.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (ReadFile(run_dir + "/metrics.jsonl").find("\"step\":2") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGTERM);
  Outcome r = Wait(pid, dir + "/log");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stopped after"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--resume=auto"), std::string::npos) << r.output;
  bool found_checkpoint = false;
  for (const auto& entry : fs::directory_iterator(run_dir + "/checkpoints")) {
    found_checkpoint |= fs::exists(entry.path() / "DONE");
  }
  EXPECT_TRUE(found_checkpoint);
  const nlohmann::json summary = ReadJson(run_dir + "/summary.json");
  EXPECT_FALSE(summary.value("completed", true)) << summary;
  EXPECT_TRUE(summary.value("stopped_by_signal", false)) << summary;
}

// One optimizer step over micro-batch 4 x accumulation 4 equals one step over batch 16: the same
// 16 samples, the loss of each micro-batch scaled by 1/4 (no clipping: it would hide a wrong scale).
TEST(TrainerAccumulation, MicroBatchesAccumulateToTheFullBatchUpdate) {
  const std::string dir = TempDir("accumulation");
  const std::vector<std::string> common = {
      "--hflip=false", "--max_steps=2", "--optimizer=sgd", "--lr=0.05", "--momentum=0.9",
      "--weight_decay=0.01", "--lr_scheduler_type=constant"};
  Outcome full = RunTrainer(With(With(SmallRun(dir + "/full"), common), {"--micro_batch_size=16"}), dir);
  ASSERT_EQ(full.exit_code, 0) << full.output;
  Outcome accum = RunTrainer(With(With(SmallRun(dir + "/accum"), common),
                                  {"--micro_batch_size=4", "--gradient_accumulation_steps=4"}),
                             dir);
  ASSERT_EQ(accum.exit_code, 0) << accum.output;
  ExpectSameWeights(dir + "/full/checkpoints/step-00000002", dir + "/accum/checkpoints/step-00000002");
  // The step losses (means over the same 16 samples) agree too.
  const auto la = StepLosses(dir + "/full");
  const auto lb = StepLosses(dir + "/accum");
  ASSERT_EQ(la.size(), 2u);
  for (const auto& [step, loss] : la) EXPECT_NEAR(lb.at(step), loss, 1e-5) << "step " << step;
}

// --eval_only on the final checkpoint reports exactly the figures the training run ended with.
TEST(TrainerEvaluate, EvalOnlyReproducesFinalEvaluation) {
  const std::string dir = TempDir("evaluate");
  const std::vector<std::string> base = SmallRun(dir + "/run");
  Outcome trained = RunTrainer(With(base, {"--max_steps=6"}), dir);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const size_t at = trained.output.find("test top-1 ");
  ASSERT_NE(at, std::string::npos) << trained.output;
  const std::string figures = trained.output.substr(at + 5, trained.output.find('\n', at) - at - 5);
  for (const char* which : {"latest", "best"}) {
    Outcome eval = RunTrainer(With(base, {"--eval_only", std::string("--checkpoint=") + which}), dir);
    ASSERT_EQ(eval.exit_code, 0) << eval.output;
    EXPECT_NE(eval.output.find(figures), std::string::npos) << figures << "\n" << eval.output;
  }
  Outcome missing = RunTrainer(With(SmallRun(dir + "/empty"), {"--eval_only"}), dir);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("no complete checkpoint"), std::string::npos) << missing.output;
}

// Data parallel through the real launcher: 2 Gloo ranks with micro-batch 4 end with the weights of
// one rank with micro-batch 8 (strided sharding gives the two ranks the same 8 samples per step;
// the all-reduce averages their gradients).
TEST(TrainerDataParallel, TwoRanksMatchOneRankWithDoubleBatch) {
  const std::string dir = TempDir("data_parallel");
  const std::vector<std::string> common = {"--hflip=false", "--max_steps=5", "--optimizer=sgd",
                                           "--lr=0.05", "--momentum=0.9", "--weight_decay=0",
                                           "--lr_scheduler_type=constant"};
  Outcome one = RunTrainer(With(With(SmallRun(dir + "/one"), common), {"--micro_batch_size=8"}), dir);
  ASSERT_EQ(one.exit_code, 0) << one.output;

  Outcome two = RunLaunched(2, With(With(SmallRun(dir + "/two"), common), {"--micro_batch_size=4"}),
                            dir + "/two.log");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("rank 1 of 2"), std::string::npos) << two.output;
  ExpectSameWeights(dir + "/one/checkpoints/step-00000005", dir + "/two/checkpoints/step-00000005");

  // The byte ledger: data parallel's gradient payload is the parameters' fp32 bytes, every step,
  // exactly; the ring model of 2 ranks moves the same; the broadcast of the initial weights is the
  // parameter bytes (buffers too) once; control scalars are the rest.
  const nlohmann::json summary = ReadJson(dir + "/two/summary.json");
  ASSERT_TRUE(summary.contains("communication")) << summary;
  const nlohmann::json& comm = summary["communication"];
  EXPECT_EQ(comm.value("sync", ""), "ddp");
  const int64_t params = summary.value("params", 0);
  const nlohmann::json& grad = comm["by_kind"]["gradient"];
  EXPECT_EQ(grad.value("payload_sent_bytes", -1), params * 4 * 5) << comm;
  EXPECT_EQ(grad.value("payload_received_bytes", -1), params * 4 * 5) << comm;
  EXPECT_EQ(grad.value("ring_sent_bytes", -1), params * 4 * 5) << comm;
  EXPECT_GE(comm["by_kind"]["parameter"].value("payload_sent_bytes", -1), params * 4) << comm;
  EXPECT_TRUE(comm["by_kind"].contains("control")) << comm;
  bool logged = false;
  std::ifstream in(dir + "/two/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("comm/gradient/sent_bytes_per_step")) continue;
    EXPECT_DOUBLE_EQ(j["comm/gradient/sent_bytes_per_step"].get<double>(), params * 4.0) << line;
    logged = true;
  }
  EXPECT_TRUE(logged) << "no comm/ scalars in metrics.jsonl";
}

// ZeRO through the real launcher: 2 Gloo ranks with ZeRO-1 (optimizer "offloaded", a no-op move
// on CPU), ZeRO-2, and ZeRO-2 + offload from a DeepSpeed config end with the weights of plain
// 2-rank data parallel. AdamW with weight decay
// (biases and 1-D parameters excluded by the param-group rules, which the shards must follow),
// accumulation 2 and global-norm clipping. Each rank writes its shard into the checkpoint.
TEST(TrainerZero, StagesOneAndTwoMatchDataParallel) {
  const std::string dir = TempDir("zero");
  const std::vector<std::string> common = {
      "--hflip=false", "--max_steps=5", "--optimizer=adamw", "--lr=0.01", "--weight_decay=0.1",
      "--micro_batch_size=4", "--gradient_accumulation_steps=2", "--gradient_clipping=0.5",
      "--lr_scheduler_type=cosine", "--warmup_steps=2"};
  Outcome dp = RunLaunched(2, With(With(SmallRun(dir + "/dp"), common), {"--zero_stage=0"}),
                           dir + "/dp.log");
  ASSERT_EQ(dp.exit_code, 0) << dp.output;
  const std::string dp_ckpt = dir + "/dp/checkpoints/step-00000005";
  EXPECT_TRUE(fs::exists(dp_ckpt + "/optimizer.safetensors"));
  EXPECT_FALSE(fs::exists(dp_ckpt + "/zero_rank0_of2.pt"));
  // DeepSpeed users select ZeRO in the config; offload_optimizer.device "cpu" maps to
  // --zero_offload_optimizer.
  const std::string ds_config = dir + "/ds_zero2_offload.json";
  std::ofstream(ds_config) << R"({"train_micro_batch_size_per_gpu": "auto",
      "gradient_accumulation_steps": "auto",
      "zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}}})";
  struct Variant {
    std::string name;
    std::vector<std::string> flags;
    std::string log;  // how the run describes its ZeRO setup
  };
  const std::vector<Variant> variants = {
      {"zero1_offload", {"--zero_stage=1", "--zero_offload_optimizer"},
       "ZeRO stage 1 (optimizer on the CPU): this rank holds"},
      {"zero2", {"--zero_stage=2"}, "ZeRO stage 2: this rank holds"},
      {"deepspeed", {"--deepspeed_config=" + ds_config},
       "ZeRO stage 2 (optimizer on the CPU): this rank holds"}};
  for (const Variant& v : variants) {
    const std::string& name = v.name;
    Outcome r = RunLaunched(2, With(With(SmallRun(dir + "/" + name), common), v.flags),
                            dir + "/" + name + ".log");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(v.log), std::string::npos) << r.output;
    const std::string ckpt = dir + "/" + name + "/checkpoints/step-00000005";
    for (const char* file : {"DONE", "model.safetensors", "trainer_state.json",
                             "zero_rank0_of2.pt", "zero_rank1_of2.pt"}) {
      EXPECT_TRUE(fs::exists(ckpt + "/" + file)) << name << ": " << file;
    }
    EXPECT_FALSE(fs::exists(ckpt + "/optimizer.safetensors")) << name;
    EXPECT_NE(ReadFile(ckpt + "/DONE").find("zero_rank1_of2.pt"), std::string::npos) << name;
    SCOPED_TRACE(name);
    ExpectSameWeights(dp_ckpt, ckpt);
  }
}

const std::vector<std::string>& ZeroResumeFlags() {
  static const std::vector<std::string> flags = {
      "--hflip=false", "--optimizer=adamw", "--lr=0.01", "--weight_decay=0.1",
      "--micro_batch_size=4", "--lr_scheduler_type=constant"};
  return flags;
}

// Launches 2 ranks of SmallRun(dir/name) + ZeroResumeFlags() + `more`; expects success.
Outcome LaunchZeroRun(const std::string& dir, const std::string& name, std::vector<std::string> more) {
  static int launches = 0;
  Outcome r = RunLaunched(2, With(With(SmallRun(dir + "/" + name), ZeroResumeFlags()), more),
                          dir + "/launch" + std::to_string(++launches) + ".log");
  EXPECT_EQ(r.exit_code, 0) << name << ":\n" << r.output;
  return r;
}

// ZeRO checkpoints resume exactly: 3 steps, then --resume=auto to 6, gives the losses and weights
// of 6 uninterrupted steps, drop path included (rank 1 draws its own masks again: its RNG state
// is in the checkpoint). A ZeRO checkpoint on one process is a clear error naming both world
// sizes; under the other ZeRO stage it continues.
TEST(TrainerZero, ShardedCheckpointsResumeExactly) {
  const std::string dir = TempDir("zero_resume");
  const std::vector<std::string> drop_path = {"--model=convnext_pico_fmnist", "--drop_path_rate=0.2"};
  LaunchZeroRun(dir, "straight", With(drop_path, {"--zero_stage=2", "--max_steps=6"}));
  LaunchZeroRun(dir, "halves", With(drop_path, {"--zero_stage=2", "--max_steps=3"}));
  EXPECT_TRUE(fs::exists(dir + "/halves/checkpoints/step-00000003/rng_rank1.bin"));
  Outcome resumed =
      LaunchZeroRun(dir, "halves", With(drop_path, {"--zero_stage=2", "--max_steps=6", "--resume=auto"}));
  EXPECT_NE(resumed.output.find("resumed at step 3"), std::string::npos) << resumed.output;
  const std::map<int64_t, double> expected = StepLosses(dir + "/straight");
  const std::map<int64_t, double> actual = StepLosses(dir + "/halves");
  ASSERT_EQ(expected.size(), 6u);
  ASSERT_EQ(actual.size(), 6u);
  for (const auto& [step, loss] : expected) EXPECT_EQ(actual.at(step), loss) << "step " << step;
  ExpectSameWeights(dir + "/straight/checkpoints/step-00000006",
                    dir + "/halves/checkpoints/step-00000006");

  Outcome one = RunTrainer(With(With(With(SmallRun(dir + "/halves"), ZeroResumeFlags()), drop_path),
                                {"--zero_stage=2", "--max_steps=9", "--resume=auto"}),
                           dir);
  EXPECT_EQ(one.exit_code, 1) << one.output;
  EXPECT_NE(one.output.find("nothing to shard"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("sharded over 2 ranks"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("world size 1"), std::string::npos) << one.output;

  // Stage 1 and 2 shards are alike: a ZeRO-2 checkpoint continues under ZeRO-1.
  Outcome restaged = LaunchZeroRun(dir, "halves",
                                   With(drop_path, {"--zero_stage=1", "--max_steps=7", "--resume=auto"}));
  EXPECT_NE(restaged.output.find("continuing with --zero_stage=1"), std::string::npos)
      << restaged.output;
}

// An unsharded (plain data-parallel) checkpoint resumes under ZeRO: each rank takes its elements
// of optimizer.safetensors, and the run ends where plain data parallel would.
TEST(TrainerZero, UnshardedCheckpointResumesUnderZero) {
  const std::string dir = TempDir("zero_from_dp");
  LaunchZeroRun(dir, "dp_straight", {"--zero_stage=0", "--max_steps=6"});
  LaunchZeroRun(dir, "from_dp", {"--zero_stage=0", "--max_steps=3"});
  Outcome from_dp = LaunchZeroRun(dir, "from_dp", {"--zero_stage=1", "--max_steps=6", "--resume=auto"});
  EXPECT_NE(from_dp.output.find("unsharded optimizer state"), std::string::npos) << from_dp.output;
  ExpectSameWeights(dir + "/dp_straight/checkpoints/step-00000006",
                    dir + "/from_dp/checkpoints/step-00000006");
}

// A ZeRO checkpoint that cannot be written (here `checkpoints` is a file) ends the run with the
// save's error naming the step, the rank and the path (whichever rank reports first; the launcher
// then stops the other), and leaves no checkpoint.
TEST(TrainerZero, FailedCheckpointIsAClearError) {
  const std::string dir = TempDir("zero_save_fails");
  fs::create_directories(dir + "/run");
  std::ofstream(dir + "/run/checkpoints").put('x');
  ASSERT_TRUE(fs::is_regular_file(dir + "/run/checkpoints"));
  Outcome r = RunLaunched(2, With(SmallRun(dir + "/run"), {"--zero_stage=1", "--max_steps=2",
                                                          "--dist_timeout_s=120"}),
                          dir + "/launch.log");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("train: error: INTERNAL: checkpoint of step 2 on rank "),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/run/checkpoints/.tmp-step-00000002"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/run/checkpoints/step-00000002"));
}

// --hub_repo: snapshots land in ONE model repo (a commit per snapshot) in the layout transformers
// loads for ConvNeXt, with a model card; with the Hub down, training finishes all the same.
TEST(TrainerHub, SnapshotsGoToOneRepoAndAnOutageNeverStopsTraining) {
  auto hub = hub::testing::FakeHub::Start();
  ASSERT_TRUE(hub.ok()) << hub.status();
  setenv("HF_ENDPOINT", (*hub)->endpoint().c_str(), 1);
  setenv("HF_TOKEN", (*hub)->options().token.c_str(), 1);
  const std::string dir = TempDir("hub");
  std::vector<std::string> args = With(SmallRun(dir + "/up"), {"--model=convnext_pico_fmnist",
                                                               "--max_steps=6", "--upload_every=2",
                                                               "--hub_repo=convforever/run-up"});
  Outcome up = RunTrainer(args, dir);
  ASSERT_EQ(up.exit_code, 0) << up.output;
  std::optional<hub::testing::FakeRepo> repo = (*hub)->repo("model", "convforever/run-up");
  ASSERT_TRUE(repo.has_value()) << up.output;
  EXPECT_GE(repo->commit_summaries.size(), 1u);
  EXPECT_TRUE(repo->files.count("model.safetensors"));
  ASSERT_TRUE(repo->files.count("config.json"));
  EXPECT_NE(repo->files.at("config.json").content.find("ConvNextForImageClassification"),
            std::string::npos);
  ASSERT_TRUE(repo->files.count("README.md"));
  EXPECT_NE(repo->files.at("README.md").content.find("step 6"), std::string::npos)
      << repo->files.at("README.md").content;
  EXPECT_TRUE((*hub)->violations().empty());
  EXPECT_EQ(up.output.find((*hub)->options().token), std::string::npos) << "token leaked";

  (*hub)->SetDown(true);
  Outcome down = RunTrainer(With(SmallRun(dir + "/down"), {"--max_steps=6", "--upload_every=2",
                                                           "--hub_repo=convforever/run-down"}),
                            dir);
  EXPECT_EQ(down.exit_code, 0) << down.output;
  EXPECT_NE(down.output.find("finished after 6 steps"), std::string::npos) << down.output;
  EXPECT_NE(down.output.find("tools/cf hub upload"), std::string::npos) << down.output;
  EXPECT_EQ(down.output.find((*hub)->options().token), std::string::npos) << "token leaked";
  unsetenv("HF_ENDPOINT");
  unsetenv("HF_TOKEN");
}

// 256 samples / micro-batch 8 = 32 batches per epoch; with accumulation 3 that is 10 steps and a
// remainder of 2 micro-batches, which each epoch drops instead of failing mid-cycle.
TEST(TrainerAccumulation, EpochsNotDivisibleByAccumulationDropTheRemainder) {
  const std::string dir = TempDir("uneven");
  Outcome r = RunTrainer(With(SmallRun(dir + "/run"), {"--gradient_accumulation_steps=3",
                                                       "--epochs=2", "--lr_scheduler_type=constant"}),
                         dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("10 steps/epoch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("finished after 20 steps"), std::string::npos) << r.output;
}

TEST(TrainerFailures, NonFiniteLossAbortsWithHint) {
  const std::string dir = TempDir("nonfinite");
  Outcome r = RunTrainer(With(SmallRun(dir + "/run"), {"--optimizer=sgd", "--lr=1e30",
                                                   "--weight_decay=0", "--max_steps=50",
                                                   "--max_nonfinite_steps=2",
                                                   "--lr_scheduler_type=constant"}),
                     dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("non-finite"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--lr"), std::string::npos) << r.output;
}

TEST(TrainerFailures, BadFlagsAreRejectedBeforeWork) {
  const std::string dir = TempDir("badflags");
  struct Case {
    std::vector<std::string> flags;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--optimizer=adam_typo"}, "--optimizer"},
      {{"--precision=fp16"}, "fp16 needs --device=cuda"},
      {{"--model=convforever", "--depth=3"}, "--depth"},
      {{"--data=cifar10"}, "--data_dir"},
      {{"--micro_batch_size=0"}, "--micro_batch_size"},
      {{"--widths=96,x"}, "--widths"},
      {{"--model=no_such_model"}, "no_such_model"},
      {{"--optimizer=lamb", "--zero_stage=1"}, "lamb cannot run under --zero_stage > 0"},
      {{"--zero_offload_optimizer"}, "--zero_offload_optimizer: needs --zero_stage"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = With(SmallRun(dir + "/run"), c.flags);
    Outcome r = RunTrainer(args, dir);
    EXPECT_NE(r.exit_code, 0) << c.expected;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir + "/run/checkpoints/step-00000001")) << c.expected;
  }
}

}  // namespace
}  // namespace cf::train
