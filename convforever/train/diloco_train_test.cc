// --sync=diloco end to end: 2 Gloo ranks of the trainer binary through the real launcher
// (convforever/distributed/launch.sh). DiLoCo with H = 1, inner SGD and outer SGD lr 1 without
// momentum equals data parallel; the byte ledger shows pseudo-gradients only, in the size of their
// wire format, and >= 50x fewer bytes than DDP at H = 50; a job killed with SIGKILL resumes to the
// same losses and per-rank state; a rank killed during the outer loop ends the other with an error
// naming it; bad flag combinations are refused before any work.
#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>

#include "convforever/distributed/multiprocess_harness.h"
#include "convforever/models/safetensors.h"
#include "convforever/train/testing/trainer_harness.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::train {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

using testing::kLauncher;
using testing::kTrainBinary;
using testing::KillTree;
using testing::LaunchArgs;
using testing::Outcome;
using testing::ReadFile;
using testing::ProcessTree;
using testing::ReadJson;
using testing::RunLaunched;
using testing::Spawn;
using testing::StepLosses;
using testing::TempDir;
using testing::Wait;
using testing::With;

// Synthetic data, small images, deterministic single-threaded math (as train_test.cc's SmallRun).
std::vector<std::string> SmallRun(const std::string& run_dir) {
  return {"--data=synthetic",   "--synthetic_samples=256", "--synthetic_classes=4",
          "--image_size=16",    "--micro_batch_size=4",    "--num_workers=1",
          "--threads=1",        "--log_every_steps=1",     "--tensorboard=false",
          "--model=simple_cnn", "--run_dir=" + run_dir,    "--seed=7"};
}

// Two safetensors files agree tensor by tensor within `atol` (0: bit for bit).
void ExpectSameTensors(const std::string& a_path, const std::string& b_path, double atol) {
  auto a = models::ReadSafetensors(a_path);
  auto b = models::ReadSafetensors(b_path);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(a->size(), b->size()) << a_path;
  for (size_t i = 0; i < a->size(); ++i) {
    ASSERT_EQ((*a)[i].first, (*b)[i].first);
    const at::Tensor& x = (*a)[i].second;
    const at::Tensor& y = (*b)[i].second;
    if (atol == 0) {
      EXPECT_TRUE(at::equal(x, y)) << (*a)[i].first << " in " << b_path;
    } else {
      EXPECT_TRUE(at::allclose(x, y, /*rtol=*/0, atol))
          << (*a)[i].first << " max diff " << (x - y).abs().max().item<double>();
    }
  }
}

std::string Ckpt(const std::string& run_dir, int step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08d", step);
  return run_dir + "/checkpoints/" + name;
}

int64_t PayloadSent(const Json& summary, const std::string& kind) {
  const Json& by_kind = summary["communication"]["by_kind"];
  if (!by_kind.contains(kind)) return 0;
  return by_kind[kind].value("payload_sent_bytes", int64_t{-1});
}

const std::vector<std::string> kPlainSgd = {"--hflip=false", "--optimizer=sgd", "--momentum=0",
                                            "--weight_decay=0", "--lr=0.05",
                                            "--lr_scheduler_type=constant", "--max_steps=5"};

// H = 1, inner SGD without momentum, outer SGD lr 1 without momentum: every step each rank takes
// theta_r = theta - lr g_r, and the outer step sets theta - avg(theta - theta_r) = theta - lr avg(g),
// which is data parallel's step; only float rounding of the differences separates the two. The
// ledger then counts the fp32 parameters once per step as pseudo-gradients and no gradient at all.
TEST(TrainerDiLoCo, OneInnerStepEqualsDataParallel) {
  const std::string dir = TempDir("diloco_equivalence");
  Outcome ddp = RunLaunched(2, With(With(SmallRun(dir + "/ddp"), kPlainSgd), {"--sync=ddp"}),
                            dir + "/ddp.log");
  ASSERT_EQ(ddp.exit_code, 0) << ddp.output;
  Outcome diloco = RunLaunched(
      2, With(With(SmallRun(dir + "/diloco"), kPlainSgd),
              {"--sync=diloco", "--diloco_inner_steps=1", "--diloco_outer_lr=1",
               "--diloco_outer_momentum=0", "--diloco_outer_nesterov=false", "--diloco_dtype=fp32"}),
      dir + "/diloco.log");
  ASSERT_EQ(diloco.exit_code, 0) << diloco.output;
  EXPECT_NE(diloco.output.find("DiLoCo: outer step every 1 inner steps"), std::string::npos);
  const std::string ckpt = Ckpt(dir + "/diloco", 5);
  ExpectSameTensors(Ckpt(dir + "/ddp", 5) + "/model.safetensors", ckpt + "/model.safetensors", 1e-6);
  for (const char* file : {"diloco_outer.safetensors", "diloco_rank0_of2.safetensors",
                           "diloco_rank1_of2.safetensors", "rng_rank1.bin"}) {
    EXPECT_TRUE(fs::exists(ckpt + "/" + file)) << file;
  }
  EXPECT_NE(ReadFile(ckpt + "/DONE").find("diloco_rank1_of2.safetensors"), std::string::npos);

  const Json summary = ReadJson(dir + "/diloco/summary.json");
  const int64_t params = summary.value("params", 0);
  EXPECT_EQ(summary["communication"].value("sync", ""), "diloco");
  EXPECT_EQ(PayloadSent(summary, "pseudo_gradient"), params * 4 * 5) << summary["communication"];
  EXPECT_EQ(summary["communication"]["by_kind"]["pseudo_gradient"].value("collectives", 0), 5);
  EXPECT_FALSE(summary["communication"]["by_kind"].contains("gradient")) << summary["communication"];
  EXPECT_EQ(PayloadSent(ReadJson(dir + "/ddp/summary.json"), "gradient"), params * 4 * 5);
}

// bf16 halves the fp32 payload; int8 sends one byte per element (the last chunk padded) plus a
// 4-byte scale per chunk, all-gathered. H = 2 over 4 steps: 2 outer steps. The bf16 run takes
// its DiLoCo settings from a DeepSpeed-style JSON config's "diloco" section instead of flags.
TEST(TrainerDiLoCo, PayloadFollowsTheWireFormat) {
  const std::string dir = TempDir("diloco_bytes");
  const std::string ds_config = dir + "/ds_diloco.json";
  std::ofstream(ds_config) << R"({"train_micro_batch_size_per_gpu": "auto",
      "diloco": {"inner_steps": 2, "dtype": "bf16"}})";
  std::map<std::string, int64_t> sent;
  int64_t params = 0;
  for (const std::string dtype : {"bf16", "int8"}) {
    const std::vector<std::string> diloco =
        dtype == "bf16" ? std::vector<std::string>{"--deepspeed_config=" + ds_config}
                        : std::vector<std::string>{"--sync=diloco", "--diloco_inner_steps=2",
                                                   "--diloco_dtype=int8", "--diloco_int8_chunk=4096"};
    Outcome r = RunLaunched(2, With(With(SmallRun(dir + "/" + dtype), {"--max_steps=4"}), diloco),
                            dir + "/" + dtype + ".log");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("DiLoCo: outer step every 2 inner steps"), std::string::npos) << r.output;
    const Json summary = ReadJson(dir + "/" + dtype + "/summary.json");
    params = summary.value("params", 0);
    sent[dtype] = PayloadSent(summary, "pseudo_gradient");
    EXPECT_EQ(PayloadSent(summary, "gradient"), 0);
  }
  EXPECT_EQ(sent["bf16"], params * 2 * 2);
  const int64_t chunks = (params + 4095) / 4096;
  EXPECT_EQ(sent["int8"], 2 * (chunks * 4096 + chunks * 4));
  EXPECT_LT(sent["int8"], params * 4 * 2 * 0.27);  // about a quarter of fp32
}

// At H = 50 over 100 steps DiLoCo (int8) sends two outer steps' pseudo-gradients where DDP sends
// 100 steps of gradients: >= 50x fewer bytes in all (the initial weight broadcast included).
TEST(TrainerDiLoCo, FiftyInnerStepsMoveFiftyTimesFewerBytes) {
  const std::string dir = TempDir("diloco_h50");
  const std::vector<std::string> common = {"--max_steps=100", "--lr_scheduler_type=constant"};
  Outcome ddp = RunLaunched(2, With(With(SmallRun(dir + "/ddp"), common), {"--sync=ddp"}), dir + "/ddp.log");
  ASSERT_EQ(ddp.exit_code, 0) << ddp.output;
  Outcome dl = RunLaunched(2, With(With(SmallRun(dir + "/diloco"), common),
                                   {"--sync=diloco", "--diloco_inner_steps=50", "--diloco_dtype=int8"}),
                           dir + "/diloco.log");
  ASSERT_EQ(dl.exit_code, 0) << dl.output;
  const Json a = ReadJson(dir + "/ddp/summary.json");
  const Json b = ReadJson(dir + "/diloco/summary.json");
  const int64_t ddp_total = a["communication"].value("payload_sent_bytes", int64_t{0});
  const int64_t diloco_total = b["communication"].value("payload_sent_bytes", int64_t{0});
  ASSERT_GT(diloco_total, 0);
  EXPECT_GE(ddp_total, 50 * diloco_total) << a["communication"] << "\n" << b["communication"];
  EXPECT_GE(PayloadSent(a, "gradient"), 150 * PayloadSent(b, "pseudo_gradient"));
  EXPECT_EQ(b["communication"]["by_kind"]["pseudo_gradient"].value("collectives", 0), 2);
}

// SIGTERM to the trainer processes under `pid` (as a cluster scheduler sends it to each task).
int TerminateTrainers(pid_t pid) {
  int n = 0;
  for (pid_t p : ProcessTree(pid)) {
    if (ReadFile("/proc/" + std::to_string(p) + "/cmdline").rfind(kTrainBinary, 0) == 0) {
      kill(p, SIGTERM);
      ++n;
    }
  }
  return n;
}

// The whole job killed with SIGKILL after its first checkpoint, then --resume=auto: rank 0's
// per-step losses equal an uninterrupted run's, and the final checkpoint's per-rank state (rank 1's
// weights, inner AdamW moments, int8 error feedback) is bit for bit the same. Fragments with overlap
// make checkpoints fall while a fragment's average is in flight, and rank 1's weights differ from
// rank 0's there.
TEST(TrainerDiLoCo, KilledJobResumesExactly) {
  const std::string dir = TempDir("diloco_resume");
  const std::vector<std::string> flags = {
      "--max_steps=40", "--checkpoint_every_steps=4", "--optimizer=adamw", "--lr=0.003",
      "--sync=diloco", "--diloco_inner_steps=4", "--diloco_fragments=2", "--diloco_overlap",
      "--diloco_dtype=int8", "--diloco_int8_chunk=1000"};
  Outcome full = RunLaunched(2, With(SmallRun(dir + "/full"), flags), dir + "/full.log");
  ASSERT_EQ(full.exit_code, 0) << full.output;

  const std::string killed_dir = dir + "/killed";
  const pid_t pid = Spawn(LaunchArgs(2, With(SmallRun(killed_dir), flags)), dir + "/killed.log");
  const std::string first_done = Ckpt(killed_dir, 4) + "/DONE";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(first_done) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  KillTree(pid);
  Outcome killed = Wait(pid, dir + "/killed.log");
  ASSERT_EQ(killed.signal, SIGKILL) << killed.output;
  ASSERT_FALSE(fs::exists(killed_dir + "/summary.json")) << "the run ended before it was killed";

  Outcome resumed = RunLaunched(2, With(SmallRun(killed_dir), With(flags, {"--resume=auto"})),
                                dir + "/resumed.log");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed at step"), std::string::npos) << resumed.output;

  const std::map<int64_t, double> expected = StepLosses(dir + "/full");
  const std::map<int64_t, double> actual = StepLosses(killed_dir);
  ASSERT_EQ(expected.size(), 40u);
  ASSERT_EQ(actual.size(), 40u);
  for (const auto& [step, loss] : expected) EXPECT_EQ(actual.at(step), loss) << "step " << step;
  for (const char* file : {"model.safetensors", "optimizer.safetensors", "diloco_outer.safetensors",
                           "diloco_rank0_of2.safetensors", "diloco_rank1_of2.safetensors"}) {
    SCOPED_TRACE(file);
    ExpectSameTensors(Ckpt(dir + "/full", 40) + "/" + file, Ckpt(killed_dir, 40) + "/" + file, 0);
  }
}

// Rank 1 is killed with SIGKILL during the first outer step (over an emulated 1 Mbit/s link an
// fp32 outer step takes ~2.6 s): rank 0's next collective (the outer step's own, or the stop
// agreement right after it) fails, and rank 0 stops with an error naming rank 1, within its
// --dist_timeout_s. The ranks are started directly (not by the launcher, which
// would stop rank 0 itself as soon as rank 1 died).
TEST(TrainerDiLoCo, KilledRankEndsTheOtherWithItsName) {
  const std::string dir = TempDir("diloco_peer");
  const int port = distributed::testing::FreeLoopbackPort();
  std::vector<pid_t> pids;
  const std::vector<std::string> args = With(
      With({kTrainBinary}, SmallRun(dir + "/run")),
      {"--max_steps=40", "--sync=diloco", "--diloco_inner_steps=2", "--dist_timeout_s=10",
       "--dist_link_mbps=1"});
  for (int rank = 0; rank < 2; ++rank) {
    pids.push_back(Spawn(args, dir + "/rank" + std::to_string(rank) + ".log",
                         {"RANK=" + std::to_string(rank), "WORLD_SIZE=2", "LOCAL_RANK=" + std::to_string(rank),
                          "LOCAL_WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1",
                          "MASTER_PORT=" + std::to_string(port)}));
  }
  const std::string rank1_log = dir + "/rank1.log";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (ReadFile(rank1_log).find("DiLoCo: outer step") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // inside the first outer step
  kill(pids[1], SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  Outcome rank1 = Wait(pids[1], rank1_log);
  EXPECT_EQ(rank1.signal, SIGKILL);
  // Rank 0 must end by itself; a hang past the timeout is caught here and fails the test.
  int status = 0;
  pid_t done = 0;
  while ((done = waitpid(pids[0], &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() - killed_at < std::chrono::seconds(40)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (done == 0) {
    kill(pids[0], SIGKILL);
    waitpid(pids[0], &status, 0);
    FAIL() << "rank 0 still running 40 s after rank 1 died:\n" << ReadFile(dir + "/rank0.log");
  }
  const std::string out = ReadFile(dir + "/rank0.log");
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;
  EXPECT_NE(out.find("rank 1 stopped responding"), std::string::npos) << out;
  EXPECT_NE(out.find("rank 0 of 2"), std::string::npos) << out;
}

// SIGTERM to both ranks: under DiLoCo the ranks agree on stopping
// only at outer steps, so the run checkpoints at a multiple of H with synchronised weights. A plain
// data-parallel checkpoint then resumes under DiLoCo, whose outer steps start from its weights.
TEST(TrainerDiLoCo, SigtermStopsAtAnOuterStepAndDdpCheckpointsResume) {
  const std::string dir = TempDir("diloco_sigterm");
  const std::vector<std::string> flags = {"--max_steps=100000", "--sync=diloco",
                                          "--diloco_inner_steps=8"};
  const pid_t pid = Spawn(LaunchArgs(2, With(SmallRun(dir + "/run"), flags)), dir + "/run.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(dir + "/run/metrics.jsonl") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(TerminateTrainers(pid), 2);
  Outcome r = Wait(pid, dir + "/run.log");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const Json summary = ReadJson(dir + "/run/summary.json");
  EXPECT_TRUE(summary.value("stopped_by_signal", false)) << summary;
  const int64_t steps = summary.value("steps", int64_t{0});
  EXPECT_GT(steps, 0);
  EXPECT_EQ(steps % 8, 0) << "stopped between outer steps";
  EXPECT_TRUE(fs::exists(Ckpt(dir + "/run", static_cast<int>(steps)) + "/diloco_rank1_of2.safetensors"));

  Outcome ddp = RunLaunched(2, With(SmallRun(dir + "/mixed"), {"--max_steps=4", "--sync=ddp"}),
                            dir + "/ddp.log");
  ASSERT_EQ(ddp.exit_code, 0) << ddp.output;
  Outcome dl = RunLaunched(2, With(SmallRun(dir + "/mixed"),
                                   {"--max_steps=8", "--sync=diloco", "--diloco_inner_steps=4",
                                    "--resume=auto"}),
                           dir + "/diloco.log");
  ASSERT_EQ(dl.exit_code, 0) << dl.output;
  EXPECT_NE(dl.output.find("has no DiLoCo state: the outer steps start from its weights"),
            std::string::npos) << dl.output;
  EXPECT_EQ(ReadJson(dir + "/mixed/summary.json").value("steps", 0), 8);
}

TEST(TrainerDiLoCo, BadCombinationsAreRefusedBeforeWork) {
  const std::string dir = TempDir("diloco_flags");
  struct Case {
    std::vector<std::string> flags;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--zero_stage=1"}, "--zero_stage: cannot be combined with --sync=diloco"},
      {{"--diloco_inner_steps=0"}, "--diloco_inner_steps: must be >= 1"},
      {{"--diloco_inner_steps=4", "--checkpoint_every_steps=6"}, "must be a multiple of --diloco_inner_steps (4)"},
      {{"--diloco_dtype=fp8"}, "--diloco_dtype: 'fp8' is not one of"},
      {{"--diloco_inner_steps=2", "--diloco_fragments=3"}, "--diloco_fragments: must not exceed"},
      {{"--diloco_outer_momentum=1"}, "--diloco_outer_momentum"},
  };
  for (const Case& c : cases) {
    const std::string log = dir + "/run.log";
    Outcome r = Wait(Spawn(With(With({kTrainBinary}, SmallRun(dir + "/run")),
                                With({"--sync=diloco"}, c.flags)), log), log);
    EXPECT_EQ(r.exit_code, 1) << c.expected << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir + "/run/checkpoints")) << c.expected;
  }
}

}  // namespace
}  // namespace cf::train
