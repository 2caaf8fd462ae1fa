// --sync=powersgd end to end: 2 Gloo ranks of the trainer binary through the real launcher
// (convforever/distributed/launch.sh on 127.0.0.1). At full rank PowerSGD ends with DDP's
// weights; the byte ledger in summary.json counts exactly the factors' bytes, and rank 4 on the
// default recipe's model moves >= 10x fewer gradient bytes than DDP; a run killed with SIGKILL
// resumes to the losses of an uninterrupted one; ZeRO + PowerSGD is refused. The math itself is
// tested in convforever/distributed/powersgd_test.cc.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <torch/serialize/input-archive.h>

#include "convforever/models/safetensors.h"
#include "convforever/train/testing/trainer_harness.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

namespace fs = std::filesystem;

using testing::ExpectSameWeights;
using testing::kTrainBinary;
using testing::LaunchArgs;
using testing::Outcome;
using testing::ReadFile;
using testing::ReadJson;
using testing::RunLaunched;
using testing::Spawn;
using testing::StepLosses;
using testing::TempDir;
using testing::Wait;
using testing::With;

// Synthetic data, deterministic single-threaded math; the ConvNeXt has matrices of both
// orientations (depthwise [C, 49] with C < 49 and C > 49, pointwise [4C, C] and [C, 4C]).
std::vector<std::string> SmallRun(const std::string& run_dir) {
  return {"--data=synthetic",   "--synthetic_samples=256", "--synthetic_classes=4",
          "--image_size=16",    "--micro_batch_size=4",    "--num_workers=1",
          "--threads=1",        "--log_every_steps=1",     "--tensorboard=false",
          "--hflip=false",      "--model=convnext_pico_fmnist", "--run_dir=" + run_dir,
          "--seed=7"};
}

// Full rank is DDP: with r = min(n, m) for every matrix (a rank above every dimension) and every
// matrix compressed, PowerSGD's estimate is the exact sum. After the P all-reduce, P = M_sum Q
// (M_sum = sum over ranks of M_i); QR makes its columns an orthonormal basis P' whose span holds
// span(P). If r = n, P' is a square orthogonal matrix and P' P'^T = I. If r = m < n, Q is square
// and orthogonal too (it is QR-orthogonalised, warm-started or drawn), so span(P) = span(M_sum),
// and P' P'^T projects onto a space holding every column of M_sum. Either way the estimate
// P' (M_sum^T P')^T = P' P'^T M_sum = M_sum. The per-rank errors e_i = M_i - M_sum / W are not
// zero, but they sum to zero over ranks, so the next step's M_sum is again the true gradient sum:
// only rounding separates the runs. SGD with momentum, so no optimizer magnifies rounding.
TEST(TrainerPowerSgd, FullRankEqualsDataParallel) {
  const std::string dir = TempDir("powersgd_full_rank");
  const std::vector<std::string> common = {"--max_steps=5", "--optimizer=sgd", "--lr=0.05",
                                           "--momentum=0.9", "--weight_decay=0",
                                           "--lr_scheduler_type=constant"};
  Outcome ddp = RunLaunched(2, With(With(SmallRun(dir + "/ddp"), common), {"--sync=ddp"}), dir + "/ddp.log");
  ASSERT_EQ(ddp.exit_code, 0) << ddp.output;
  Outcome psgd = RunLaunched(2, 
      With(With(SmallRun(dir + "/psgd"), common),
           {"--sync=powersgd", "--powersgd_rank=100000", "--powersgd_start_iter=0",
            "--powersgd_min_compression_rate=0"}),
      dir + "/psgd.log");
  ASSERT_EQ(psgd.exit_code, 0) << psgd.output;
  ExpectSameWeights(dir + "/ddp/checkpoints/step-00000005", dir + "/psgd/checkpoints/step-00000005",
                    /*rtol=*/1e-5, /*atol=*/1e-6);
  // Every step went through the factors (the 1-D tensors, never compressed, under "gradient").
  const nlohmann::json by_kind = ReadJson(dir + "/psgd/summary.json")["communication"]["by_kind"];
  EXPECT_EQ(by_kind["compressed"].value("collectives", 0), 10) << by_kind;  // P and Q, 5 steps
}

// The ledger counts what PowerSGD sends, exactly: after start_iter, per step, 4 r (n + m) bytes
// for every compressed [n, m] gradient (r = min(4, n, m); compressed when n m >= 2 r (n + m)) and
// the 4-byte elements of the rest under "gradient"; before it, DDP's full gradient. The default
// recipe's model at rank 4 sends >= 10x fewer gradient bytes per step than DDP.
TEST(TrainerPowerSgd, LedgerCountsTheFactorsAndRankFourSavesTenfold) {
  const std::string dir = TempDir("powersgd_ledger");
  const std::vector<std::string> recipe = {
      "--flagfile=convforever/train/recipes/fashion_mnist.flags", "--data=synthetic",
      "--synthetic_samples=256", "--synthetic_classes=10", "--micro_batch_size=8",
      "--max_steps=5", "--warmup_steps=1", "--log_every_steps=1", "--tensorboard=false",
      "--num_workers=1", "--threads=1"};
  Outcome ddp = RunLaunched(2, With(recipe, {"--run_dir=" + dir + "/ddp"}), dir + "/ddp.log");
  ASSERT_EQ(ddp.exit_code, 0) << ddp.output;
  Outcome psgd = RunLaunched(2, With(recipe, {"--run_dir=" + dir + "/psgd", "--sync=powersgd",
                                           "--powersgd_rank=4", "--powersgd_start_iter=2"}),
                             dir + "/psgd.log");
  ASSERT_EQ(psgd.exit_code, 0) << psgd.output;

  // The expected bytes, from the checkpoint's tensors (all of them parameters: their numel sums
  // to summary.json's parameter count).
  auto weights = models::ReadSafetensors(dir + "/psgd/checkpoints/step-00000005/model.safetensors");
  ASSERT_TRUE(weights.ok()) << weights.status();
  int64_t params = 0, factor_bytes = 0, whole_bytes = 0, compressed = 0;
  for (const auto& [name, t] : *weights) {
    params += t.numel();
    const int64_t n = t.dim() >= 2 ? t.size(0) : 0;
    const int64_t m = n > 0 ? t.numel() / n : 0;
    const int64_t r = std::min<int64_t>({4, n, m});
    if (n > 0 && n * m >= 2 * r * (n + m)) {
      factor_bytes += 4 * r * (n + m);
      ++compressed;
    } else {
      whole_bytes += 4 * t.numel();
    }
  }
  const nlohmann::json summary = ReadJson(dir + "/psgd/summary.json");
  ASSERT_EQ(summary.value("params", 0), params);
  EXPECT_GT(compressed, 10);
  const nlohmann::json& by_kind = summary["communication"]["by_kind"];
  EXPECT_EQ(summary["communication"].value("sync", ""), "powersgd");
  // Steps 1-2 plain, 3-5 compressed.
  EXPECT_EQ(by_kind["compressed"].value("payload_sent_bytes", -1), 3 * factor_bytes) << by_kind;
  EXPECT_EQ(by_kind["compressed"].value("payload_received_bytes", -1), 3 * factor_bytes) << by_kind;
  EXPECT_EQ(by_kind["gradient"].value("payload_sent_bytes", -1), 2 * 4 * params + 3 * whole_bytes)
      << by_kind;

  const nlohmann::json ddp_kind = ReadJson(dir + "/ddp/summary.json")["communication"]["by_kind"];
  const int64_t ddp_per_step = ddp_kind["gradient"].value("payload_sent_bytes", 0) / 5;
  EXPECT_EQ(ddp_per_step, 4 * params);
  const int64_t psgd_per_step =
      (by_kind["compressed"].value("payload_sent_bytes", 0) +
       by_kind["gradient"].value("payload_sent_bytes", 0) - 2 * ddp_per_step) / 3;
  EXPECT_GE(ddp_per_step, 10 * psgd_per_step)
      << "DDP " << ddp_per_step << " bytes per step, PowerSGD rank 4 " << psgd_per_step;
}

// Every process below `root` (by /proc/<pid>/stat's parent pid), whose command name is `comm`.
std::vector<pid_t> DescendantsNamed(pid_t root, const std::string& comm) {
  std::map<pid_t, std::pair<pid_t, std::string>> procs;  // pid -> (parent, name)
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = ReadFile(entry.path().string() + "/stat");
    const size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t parent = 0;
    rest >> state >> parent;
    procs[std::stoi(name)] = {parent, stat.substr(open + 1, close - open - 1)};
  }
  std::vector<pid_t> found;
  for (const auto& [pid, info] : procs) {
    if (info.second != comm) continue;
    for (pid_t p = info.first; p > 1 && procs.count(p); p = procs[p].first) {
      if (p == root) {
        found.push_back(pid);
        break;
      }
    }
  }
  return found;
}

// kill -9 of both ranks after the first checkpoint (a crashed job), then --resume=auto: every
// rank's errors and Q's come back from powersgd_rank<r>_of2.pt, so the per-step losses equal an
// uninterrupted run's, each step logged once.
TEST(TrainerPowerSgd, KilledRunResumesToIdenticalLosses) {
  const std::string dir = TempDir("powersgd_resume");
  const std::vector<std::string> flags = {
      "--max_steps=16", "--checkpoint_every_steps=4", "--optimizer=adamw", "--lr=0.01",
      "--lr_scheduler_type=constant", "--drop_path_rate=0.1", "--sync=powersgd",
      "--powersgd_rank=2", "--powersgd_start_iter=2"};
  Outcome full = RunLaunched(2, With(SmallRun(dir + "/full"), flags), dir + "/full.log");
  ASSERT_EQ(full.exit_code, 0) << full.output;

  const std::string killed_dir = dir + "/killed";
  const pid_t launcher = Spawn(LaunchArgs(2, With(SmallRun(killed_dir), flags)), dir + "/killed.log");
  const std::string first_done = killed_dir + "/checkpoints/step-00000004/DONE";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(first_done) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const std::vector<pid_t> ranks = DescendantsNamed(launcher, "train");
  for (pid_t pid : ranks) kill(pid, SIGKILL);
  Outcome killed = Wait(launcher, dir + "/killed.log");
  ASSERT_EQ(ranks.size(), 2u) << killed.output;
  ASSERT_NE(killed.exit_code, 0) << "the run ended before it could be killed:\n" << killed.output;
  ASSERT_FALSE(fs::exists(killed_dir + "/checkpoints/step-00000016/DONE")) << killed.output;
  for (const char* file : {"powersgd_rank0_of2.pt", "powersgd_rank1_of2.pt", "rng_rank1.bin"}) {
    EXPECT_TRUE(fs::exists(killed_dir + "/checkpoints/step-00000004/" + file)) << file;
  }
  // The warm-start Q's are the all-reduced ones, the same on both ranks; the errors are each
  // rank's own.
  std::map<std::string, at::Tensor> rank_state[2];
  for (int r = 0; r < 2; ++r) {
    torch::serialize::InputArchive archive;
    archive.load_from(killed_dir + "/checkpoints/step-00000004/powersgd_rank" + std::to_string(r) +
                      "_of2.pt");
    for (const char* key : {"bucket0/q", "bucket0/error"}) archive.read(key, rank_state[r][key]);
  }
  EXPECT_TRUE(at::equal(rank_state[0]["bucket0/q"], rank_state[1]["bucket0/q"]));
  EXPECT_FALSE(at::allclose(rank_state[0]["bucket0/error"], rank_state[1]["bucket0/error"]));

  Outcome resumed = RunLaunched(2, With(With(SmallRun(killed_dir), flags), {"--resume=auto"}),
                                dir + "/resumed.log");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed at step"), std::string::npos) << resumed.output;
  EXPECT_EQ(resumed.output.find("PowerSGD starts afresh"), std::string::npos) << resumed.output;
  const std::map<int64_t, double> expected = StepLosses(dir + "/full");
  const std::map<int64_t, double> actual = StepLosses(killed_dir);
  ASSERT_EQ(expected.size(), 16u);
  ASSERT_EQ(actual.size(), 16u);
  for (const auto& [step, loss] : expected) EXPECT_EQ(actual.at(step), loss) << "step " << step;
  ExpectSameWeights(dir + "/full/checkpoints/step-00000016", killed_dir + "/checkpoints/step-00000016",
                    /*rtol=*/1e-5, /*atol=*/0);
}

// A DDP checkpoint continues under --sync=powersgd (no PowerSGD state in it: fresh Q's, zero
// errors, steps counted from the checkpoint's), and its checkpoints then carry PowerSGD state.
TEST(TrainerPowerSgd, DataParallelCheckpointContinuesUnderPowerSgd) {
  const std::string dir = TempDir("powersgd_from_ddp");
  const std::vector<std::string> flags = {"--optimizer=sgd", "--lr=0.05",
                                          "--lr_scheduler_type=constant"};
  Outcome ddp = RunLaunched(2, With(With(SmallRun(dir + "/run"), flags), {"--max_steps=3"}),
                            dir + "/ddp.log");
  ASSERT_EQ(ddp.exit_code, 0) << ddp.output;
  Outcome psgd = RunLaunched(2, With(With(SmallRun(dir + "/run"), flags),
                                  {"--max_steps=6", "--resume=auto", "--sync=powersgd",
                                   "--powersgd_start_iter=4"}),
                             dir + "/psgd.log");
  ASSERT_EQ(psgd.exit_code, 0) << psgd.output;
  EXPECT_NE(psgd.output.find("powersgd_rank1_of2.pt: PowerSGD starts afresh at step 3"),
            std::string::npos) << psgd.output;
  EXPECT_TRUE(fs::exists(dir + "/run/checkpoints/step-00000006/powersgd_rank1_of2.pt"));
  // Step 4 was plain (start_iter 4 counts the checkpoint's 3 steps), steps 5-6 compressed.
  const nlohmann::json by_kind = ReadJson(dir + "/run/summary.json")["communication"]["by_kind"];
  EXPECT_EQ(by_kind["compressed"].value("collectives", 0), 4) << by_kind;
}

TEST(TrainerPowerSgd, ZeroWithPowerSgdIsRefused) {
  const std::string dir = TempDir("powersgd_zero");
  const std::string log = dir + "/train.log";
  Outcome r = Wait(Spawn(With({kTrainBinary}, With(SmallRun(dir + "/run"),
                                                   {"--sync=powersgd", "--zero_stage=1"})),
                         log),
                   log);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--sync: powersgd cannot be combined with --zero_stage > 0"),
            std::string::npos) << r.output;
  Outcome bad_rank = Wait(Spawn(With({kTrainBinary}, With(SmallRun(dir + "/run"),
                                                          {"--sync=powersgd", "--powersgd_rank=0"})),
                                log),
                          log);
  EXPECT_NE(bad_rank.output.find("--powersgd_rank: must be >= 1"), std::string::npos) << bad_rank.output;
}

}  // namespace
}  // namespace cf::train
