#include "convforever/train/checkpoint.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace cf::train {
namespace {

std::string TempDir() {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(root ? root : "/tmp") + "/ckpt_XXXXXX";
  return mkdtemp(tmpl.data());
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes model.bin (contents name the step) and a nested trainer/state.json.
CheckpointManager::WriterFn WriteStep(int64_t step) {
  return [step](const std::string& dir) -> absl::Status {
    std::ofstream(dir + "/model.bin") << "weights of step " << step;
    ::mkdir((dir + "/trainer").c_str(), 0755);
    std::ofstream(dir + "/trainer/state.json") << "{\"step\":" << step << "}";
    return absl::OkStatus();
  };
}

std::vector<int64_t> Steps(const CheckpointManager& manager) {
  auto list = manager.ListComplete();
  EXPECT_TRUE(list.ok()) << list.status();
  std::vector<int64_t> steps;
  for (const auto& info : *list) steps.push_back(info.step);
  return steps;
}

TEST(CheckpointManager, SaveWritesFilesAndDoneManifest) {
  const std::string run = TempDir();
  CheckpointManager manager(run, 3);
  auto path = manager.Save(100, WriteStep(100));
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, run + "/checkpoints/step-00000100");
  EXPECT_EQ(ReadAll(*path + "/model.bin"), "weights of step 100");
  EXPECT_EQ(ReadAll(*path + "/DONE"),
            "{\"files\":[\"model.bin\",\"trainer/state.json\"],\"step\":100}\n");
  EXPECT_FALSE(Exists(run + "/checkpoints/.tmp-step-00000100"));
  auto latest = manager.FindLatestComplete();
  ASSERT_TRUE(latest.ok());
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->step, 100);
}

// ZeRO ranks > 0 write their shard into TempDirPath(step) while rank 0's writer runs: it must be
// the directory the writer gets, and what they put there is fsynced and listed in DONE.
TEST(CheckpointManager, TempDirPathIsTheWritersDirectory) {
  const std::string run = TempDir();
  CheckpointManager manager(run, 3);
  EXPECT_EQ(manager.TempDirPath(7), run + "/checkpoints/.tmp-step-00000007");
  std::string seen;
  auto path = manager.Save(7, [&](const std::string& dir) {
    seen = dir;
    std::ofstream(manager.TempDirPath(7) + "/zero_rank1_of2.pt") << "shard";
    return absl::OkStatus();
  });
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(seen, manager.TempDirPath(7));
  EXPECT_EQ(ReadAll(*path + "/DONE"), "{\"files\":[\"zero_rank1_of2.pt\"],\"step\":7}\n");
}

TEST(CheckpointManager, EmptyRunHasNoCheckpoint) {
  CheckpointManager manager(TempDir() + "/never-created", 2);
  auto latest = manager.FindLatestComplete();
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_FALSE(latest->has_value());
  auto best = manager.Best();
  ASSERT_TRUE(best.ok());
  EXPECT_FALSE(best->has_value());
}

TEST(CheckpointManager, RotationKeepsLastKPlusBest) {
  const std::string run = TempDir();
  CheckpointManager manager(run, 2);
  for (int64_t step = 1; step <= 6; ++step) {
    const bool best = step == 2;
    ASSERT_TRUE(manager.Save(step * 10, WriteStep(step * 10), best, 0.5 + step).ok());
  }
  EXPECT_EQ(Steps(manager), (std::vector<int64_t>{20, 50, 60}));
  auto best = manager.Best();
  ASSERT_TRUE(best.ok() && best->has_value());
  EXPECT_EQ((*best)->step, 20);
  EXPECT_DOUBLE_EQ((*best)->metric, 2.5);
  // A new best moves the pointer; the old best then rotates out like any other.
  ASSERT_TRUE(manager.Save(70, WriteStep(70), /*is_best=*/true, std::nan("")).ok());
  EXPECT_EQ(Steps(manager), (std::vector<int64_t>{60, 70}));
  best = manager.Best();
  ASSERT_TRUE(best.ok() && best->has_value());
  EXPECT_EQ((*best)->path, run + "/checkpoints/step-00000070");
  EXPECT_TRUE(std::isnan((*best)->metric));
}

TEST(CheckpointManager, OrdersByNumberNotName) {
  const std::string run = TempDir();
  CheckpointManager manager(run, 5);
  ASSERT_TRUE(manager.Save(99999999, WriteStep(99999999)).ok());
  ASSERT_TRUE(manager.Save(100000000, WriteStep(100000000)).ok());  // 9 digits
  auto latest = manager.FindLatestComplete();
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->step, 100000000);
}

TEST(CheckpointManager, ResavingAStepReplacesIt) {
  const std::string run = TempDir();
  CheckpointManager manager(run, 2);
  ASSERT_TRUE(manager.Save(5, WriteStep(5)).ok());
  auto path = manager.Save(5, [](const std::string& dir) {
    std::ofstream(dir + "/model.bin") << "second";
    return absl::OkStatus();
  });
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(ReadAll(*path + "/model.bin"), "second");
  EXPECT_FALSE(Exists(*path + "/trainer"));
}

TEST(CheckpointManager, WriterErrorLeavesNothingAndNamesTheDir) {
  const std::string run = TempDir();
  CheckpointManager manager(run, 2);
  ASSERT_TRUE(manager.Save(1, WriteStep(1)).ok());
  auto path = manager.Save(2, [](const std::string&) { return absl::DataLossError("disk full"); });
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(path.status().message().find(".tmp-step-00000002"), std::string::npos);
  EXPECT_NE(path.status().message().find("disk full"), std::string::npos);
  EXPECT_FALSE(Exists(run + "/checkpoints/.tmp-step-00000002"));
  EXPECT_EQ(Steps(manager), std::vector<int64_t>{1});
}

TEST(CheckpointManager, RejectsNegativeStepAndCorruptBestPointer) {
  const std::string run = TempDir();
  CheckpointManager manager(run, 2);
  EXPECT_EQ(manager.Save(-1, WriteStep(1)).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(manager.Save(1, WriteStep(1), true, 1.0).ok());
  std::ofstream(run + "/checkpoints/best.json") << "{not json";
  auto best = manager.Best();
  ASSERT_FALSE(best.ok());
  EXPECT_NE(best.status().message().find("best.json"), std::string::npos);
}

void SignalAndHang(int fd) {
  const char byte = 'k';
  (void)!::write(fd, &byte, 1);
  for (;;) ::pause();
}

// Forks a child that saves `step` with the writer `arm` returns, and SIGKILLs it when it signals
// the pipe: `arm` decides where (inside the writer, or through before_done_for_test).
using Arm = std::function<CheckpointManager::WriterFn(CheckpointManager*, int fd)>;

void SaveAndKill(const std::string& run, int64_t step, const Arm& arm) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    CheckpointManager manager(run, 3);
    (void)manager.Save(step, arm(&manager, fds[1]));
    ::_exit(3);  // the kill point never returns; reaching here means it was not reached
  }
  ::close(fds[1]);
  char byte = 0;
  ASSERT_EQ(::read(fds[0], &byte, 1), 1) << "child did not reach the kill point";
  ::close(fds[0]);
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
}

TEST(CheckpointManager, KilledDuringWriteResumesFromPrevious) {
  const std::string run = TempDir();
  CheckpointManager manager(run, 3);
  ASSERT_TRUE(manager.Save(1000, WriteStep(1000)).ok());
  SaveAndKill(run, 2000, [](CheckpointManager*, int fd) -> CheckpointManager::WriterFn {
    return [fd](const std::string& dir) {
      std::ofstream(dir + "/model.bin") << "partial";
      SignalAndHang(fd);
      return absl::OkStatus();
    };
  });
  EXPECT_TRUE(Exists(run + "/checkpoints/.tmp-step-00002000/model.bin"));
  // A read-only look (evaluate beside a live trainer) finds the same and deletes nothing.
  auto peek = manager.FindLatestComplete(/*clean=*/false);
  ASSERT_TRUE(peek.ok() && peek->has_value());
  EXPECT_EQ((*peek)->step, 1000);
  EXPECT_TRUE(Exists(run + "/checkpoints/.tmp-step-00002000/model.bin"));
  auto latest = manager.FindLatestComplete();
  ASSERT_TRUE(latest.ok()) << latest.status();
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->step, 1000);
  EXPECT_FALSE(Exists(run + "/checkpoints/.tmp-step-00002000"));  // cleaned
}

TEST(CheckpointManager, KilledAfterRenameBeforeDoneResumesFromPrevious) {
  const std::string run = TempDir();
  CheckpointManager manager(run, 3);
  ASSERT_TRUE(manager.Save(1000, WriteStep(1000)).ok());
  SaveAndKill(run, 2000, [](CheckpointManager* m, int fd) {
    m->before_done_for_test = [fd] { SignalAndHang(fd); };
    return WriteStep(2000);
  });
  // The directory is in place with all its files, but without DONE it is not a checkpoint.
  EXPECT_TRUE(Exists(run + "/checkpoints/step-00002000/model.bin"));
  EXPECT_FALSE(Exists(run + "/checkpoints/step-00002000/DONE"));
  auto latest = manager.FindLatestComplete();
  ASSERT_TRUE(latest.ok()) << latest.status();
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->step, 1000);
  EXPECT_EQ(ReadAll((*latest)->path + "/model.bin"), "weights of step 1000");
  EXPECT_FALSE(Exists(run + "/checkpoints/step-00002000"));  // cleaned
  // Training goes on and saves the same step again.
  ASSERT_TRUE(manager.Save(2000, WriteStep(2000)).ok());
  EXPECT_EQ(Steps(manager), (std::vector<int64_t>{1000, 2000}));
}

}  // namespace
}  // namespace cf::train
