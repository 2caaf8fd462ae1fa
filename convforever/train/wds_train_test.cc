// WebDataset training through the real trainer binary: two local shards of 256 PNG + .cls
// samples and a class list train for --max_steps with cosine + warmup_epochs (the epoch length
// counted from the shards, then taken from the cache), checkpoint, and stop on SIGTERM within a
// step, also while the shard download stalls (the stop reaches the waiting loader); unreadable
// shards fail the run instead of looping over empty epochs.
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convforever/data/decode.h"
#include "convforever/data/test_util.h"
#include "convforever/http/testing/test_server.h"
#include "convforever/train/testing/trainer_harness.h"
#include "gtest/gtest.h"

namespace cf::train {
namespace {

namespace fs = std::filesystem;
using testing::Outcome;
using testing::ReadFile;
using testing::RunTrainer;
using testing::SpawnTrainer;
using testing::StepLosses;
using testing::TempDir;
using testing::Wait;
using testing::With;

// dir/shard-00000{0,1}.tar (256 samples each: a 28x28 PNG and a .cls label in [0, 4)),
// dir/classes.txt, and a held-out shard dir/test-000000.tar (64 samples). Returns the training
// shards' bytes.
std::vector<std::string> WriteShards(const std::string& dir) {
  data::testing::WriteFile(dir + "/classes.txt", "cat\ndog\nbird\nfish\n");
  std::vector<std::string> bytes;
  for (int s = 0; s < 2; ++s) {
    std::vector<std::pair<std::string, std::string>> m;
    for (int i = 0; i < 256; ++i) {
      const std::string key = absl::StrFormat("%06d", s * 256 + i);
      const int label = (s * 256 + i) % 4;
      m.push_back({key + ".png", *data::EncodePng(data::testing::PatternImage(28, 28, 3, label * 7 + i % 3))});
      m.push_back({key + ".cls", absl::StrCat(label)});
    }
    bytes.push_back(data::testing::TarBytes(m));
    data::testing::WriteFile(absl::StrFormat("%s/shard-%06d.tar", dir, s), bytes.back());
  }
  std::vector<std::pair<std::string, std::string>> test;
  for (int i = 0; i < 64; ++i) {
    const std::string key = absl::StrFormat("t%06d", i);
    test.push_back({key + ".png", *data::EncodePng(data::testing::PatternImage(28, 28, 3, (i % 4) * 7 + 1))});
    test.push_back({key + ".cls", absl::StrCat(i % 4)});
  }
  data::testing::WriteFile(dir + "/test-000000.tar", data::testing::TarBytes(test));
  return bytes;
}

// The user's command (data flags as given, and the held-out shard the trainer asks for), with a
// small model so the test is quick.
std::vector<std::string> UserCommand(const std::string& dir, const std::string& run_dir) {
  return {"--data=wds",
          "--data_dir=" + dir + "/shard-{000000..000001}.tar",
          "--class_list=" + dir + "/classes.txt",
          "--eval_data_dir=" + dir + "/test-000000.tar",
          "--max_steps=20",
          "--lr_scheduler_type=cosine",
          "--warmup_epochs=2",
          "--model=simple_cnn",
          "--num_workers=1",
          "--threads=1",
          "--tensorboard=false",
          "--log_every_steps=1",
          "--run_dir=" + run_dir};
}

bool HasCompleteCheckpoint(const std::string& run_dir) {
  if (!fs::exists(run_dir + "/checkpoints")) return false;
  for (const auto& entry : fs::directory_iterator(run_dir + "/checkpoints")) {
    if (fs::exists(entry.path() / "DONE")) return true;
  }
  return false;
}

class WdsTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The trainer caches its sample count under $XDG_CACHE_HOME (inherited by the child).
    const std::string cache = TempDir(std::string("xdg_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    setenv("XDG_CACHE_HOME", cache.c_str(), 1);
  }
};

TEST_F(WdsTrainTest, UsersCommandTrainsWithCosineWarmupAndCachesTheCount) {
  const std::string dir = TempDir("wds_train");
  WriteShards(dir);
  Outcome r = RunTrainer(UserCommand(dir, dir + "/run"), dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("wds: 512 training samples (counted"), std::string::npos) << r.output;
  // 512 samples / micro-batch 128 = 4 steps per epoch; 2 warmup epochs = 8 of the 20 steps.
  EXPECT_NE(r.output.find("data: 512 training samples, 4 classes, 4 steps/epoch, 20 steps"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("test-000000.tar (--eval_data_dir)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(64 images)"), std::string::npos) << r.output;  // the held-out shard, whole
  const auto losses = StepLosses(dir + "/run");
  ASSERT_EQ(losses.size(), 20u);
  EXPECT_EQ(losses.rbegin()->first, 20);
  EXPECT_TRUE(HasCompleteCheckpoint(dir + "/run"));

  Outcome again = RunTrainer(With(UserCommand(dir, dir + "/run2"), {"--max_steps=10"}), dir);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("wds: 512 training samples (from cache"), std::string::npos) << again.output;
}

TEST_F(WdsTrainTest, SigtermStopsWithinAStepAndCheckpoints) {
  const std::string dir = TempDir("wds_sigterm");
  WriteShards(dir);
  const std::string run_dir = dir + "/run";
  const pid_t pid =
      SpawnTrainer(With(UserCommand(dir, run_dir), {"--max_steps=100000", "--micro_batch_size=16"}), dir + "/log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (ReadFile(run_dir + "/metrics.jsonl").find("\"step\":2") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGTERM);
  Outcome r = Wait(pid, dir + "/log");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stop requested"), std::string::npos) << r.output;
  EXPECT_TRUE(HasCompleteCheckpoint(run_dir));
}

// Shards that are not tar files give no batch at all: the run fails at once, naming why, instead
// of starting empty epochs forever (it used to spin at full CPU).
TEST_F(WdsTrainTest, UnreadableShardsFailInsteadOfSpinning) {
  const std::string dir = TempDir("wds_unreadable");
  WriteShards(dir);
  for (int s = 0; s < 2; ++s) data::testing::WriteFile(absl::StrFormat("%s/shard-%06d.tar", dir, s), "not a tar");
  Outcome r = RunTrainer(With(UserCommand(dir, dir + "/run"), {"--train_samples=512"}), dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("epoch 0 gave no optimizer step"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("shard_failed 2"), std::string::npos) << r.output;
}

// The shards are served by a server that never answers: the trainer waits in Loader::Next with
// its feeder inside a download. One SIGTERM ends it (exit 0) without waiting for the server;
// without the stop reaching the loader, the run would outlive the test's timeout.
TEST_F(WdsTrainTest, SigtermStopsARunWaitingForAStalledDownload) {
  const std::string dir = TempDir("wds_stalled");
  WriteShards(dir);
  auto server = http::testing::TestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Handle("GET", "/", [](const http::testing::ServerRequest&) {
    http::testing::ServerResponse r = http::testing::ServerResponse::Text(200, "never");
    r.delay = absl::Hours(1);
    return r;
  });
  std::vector<std::string> args = UserCommand(dir, dir + "/run");
  args[1] = "--data_dir=" + (*server)->base_url() + "/shard-{000000..000001}.tar?token=hunter2";
  const pid_t pid = SpawnTrainer(With(args, {"--train_samples=512"}), dir + "/log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while ((*server)->request_count() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT((*server)->request_count(), 0) << ReadFile(dir + "/log");
  kill(pid, SIGTERM);
  Outcome r = Wait(pid, dir + "/log");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("wds: 512 training samples (given)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("while waiting for data"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("hunter2"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace cf::train
