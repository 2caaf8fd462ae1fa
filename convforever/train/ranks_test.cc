// Two launched Gloo ranks of the trainer binary agree with each other and with an uninterrupted
// run: plain data parallel keeps every rank's RNG state in its checkpoints (drop path draws other
// masks on rank 1, and a resume must draw them again); a batch whose samples are all unreadable on
// one rank does not end that rank's epoch early (the other would wait in a collective until the
// timeout); each rank takes its share of the machine's cores for LibTorch's threads.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "convforever/data/decode.h"
#include "convforever/data/sharding.h"
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

std::vector<std::string> SmallRun(const std::string& run_dir) {
  return {"--data=synthetic",   "--synthetic_samples=256", "--synthetic_classes=4",
          "--image_size=16",    "--micro_batch_size=4",    "--num_workers=1",
          "--threads=1",        "--log_every_steps=1",     "--tensorboard=false",
          "--hflip=false",      "--optimizer=adamw",       "--lr=0.01",
          "--lr_scheduler_type=constant", "--run_dir=" + run_dir, "--seed=7",
          "--dist_timeout_s=60"};
}

// 3 steps, a checkpoint, --resume=auto to 6: the losses of 6 uninterrupted steps, drop path
// included. Rank 1's masks differ from rank 0's (seeded seed + 1), so its gradient at step 4
// differs if its RNG came back as rank 0's, and with it the weights that step 5's loss sees.
TEST(RanksResume, EveryRankRestoresItsOwnRngState) {
  const std::string dir = TempDir("ranks_rng");
  const std::vector<std::string> drop_path = {"--model=convnext_pico_fmnist", "--drop_path_rate=0.3"};
  Outcome straight = RunLaunched(2, With(With(SmallRun(dir + "/straight"), drop_path), {"--max_steps=6"}),
                                 dir + "/straight.log");
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  Outcome first = RunLaunched(2, With(With(SmallRun(dir + "/halves"), drop_path), {"--max_steps=3"}),
                              dir + "/first.log");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_TRUE(fs::exists(dir + "/halves/checkpoints/step-00000003/rng_rank1.bin"));
  Outcome second = RunLaunched(
      2, With(With(SmallRun(dir + "/halves"), drop_path), {"--max_steps=6", "--resume=auto"}),
      dir + "/second.log");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("resumed at step 3"), std::string::npos) << second.output;
  const std::map<int64_t, double> expected = StepLosses(dir + "/straight");
  const std::map<int64_t, double> actual = StepLosses(dir + "/halves");
  ASSERT_EQ(expected.size(), 6u);
  ASSERT_EQ(actual.size(), 6u);
  for (const auto& [step, loss] : expected) EXPECT_EQ(actual.at(step), loss) << "step " << step;

  // Another world size: rank 0's RNG state for every rank, and a warning saying so (the loader
  // then refuses the checkpoint: its position is per-rank shards of 2 ranks).
  Outcome one = RunTrainer(With(With(SmallRun(dir + "/halves"), drop_path), {"--max_steps=7", "--resume=auto"}),
                           dir);
  EXPECT_NE(one.output.find("was written by 2 ranks, this run has 1"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("loader state is from another run"), std::string::npos) << one.output;
}

// An image folder of 2 classes x 8 PNGs, 16 x 16. Returns the paths in the source's index order
// (classes sorted, files sorted within each).
std::vector<std::string> WriteFolder(const std::string& root) {
  std::vector<std::string> paths;
  for (const char* cls : {"a", "b"}) {
    fs::create_directories(root + "/" + cls);
    for (int i = 0; i < 8; ++i) {
      data::Image img(16, 16, 3);
      for (size_t p = 0; p < img.pixels.size(); ++p) img.pixels[p] = static_cast<uint8_t>((p * 7 + i * 31) % 251);
      absl::StatusOr<std::string> png = data::EncodePng(img);
      EXPECT_TRUE(png.ok()) << png.status();
      const std::string path = root + "/" + cls + "/" + std::to_string(i) + ".png";
      std::ofstream(path, std::ios::binary) << *png;
      paths.push_back(path);
    }
  }
  return paths;
}

// Rank 1's second batch of epoch 0 is all unreadable (sharding.h says which files rank 1 reads
// there): rank 1 still takes 4 steps in the epoch like rank 0, with a zero gradient for the empty
// batch. Had it ended its epoch after 3, its epoch-end checkpoint collective would meet rank 0's
// step-4 gradient all-reduce (Gloo aborts on the size mismatch; other collectives would wait
// until --dist_timeout_s).
// Without --threads, each rank's LibTorch threads come from the cores shared by 2 local ranks.
TEST(RanksAgree, AnAllUnreadableBatchOnOneRankKeepsTheStepCount) {
  const std::string dir = TempDir("ranks_empty");
  const std::vector<std::string> files = WriteFolder(dir + "/train");
  WriteFolder(dir + "/eval");
  const uint64_t seed = 11;
  data::ShardSpec shard{seed, /*shuffle=*/true, /*drop_last=*/true, /*rank=*/1, /*world_size=*/2};
  const std::vector<int64_t> order = data::ShardEpochIndices(16, 0, shard);
  ASSERT_EQ(order.size(), 8u);
  for (int64_t i : {order[2], order[3]}) std::ofstream(files[i], std::ios::trunc) << "not a png";

  const std::string run_dir = dir + "/run";
  Outcome r = RunLaunched(2, {"--data=folder", "--data_dir=" + dir + "/train",
                              "--eval_data_dir=" + dir + "/eval", "--image_size=16",
                              "--micro_batch_size=2", "--epochs=1", "--num_workers=1",
                              "--model=simple_cnn", "--log_every_steps=1", "--tensorboard=false",
                              "--lr_scheduler_type=constant", "--seed=" + std::to_string(seed),
                              "--dist_timeout_s=20", "--run_dir=" + run_dir},
                          dir + "/launch.log");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[rank 1] "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank 1: every sample of batch 1 of epoch 0 failed"), std::string::npos) << r.output;
  const nlohmann::json summary = ReadJson(run_dir + "/summary.json");
  EXPECT_EQ(summary.value("steps", -1), 4) << summary;
  EXPECT_EQ(StepLosses(run_dir).size(), 4u);
  EXPECT_NE(r.output.find(" / 2 local ranks = "), std::string::npos) << r.output;
}

}  // namespace
}  // namespace cf::train
