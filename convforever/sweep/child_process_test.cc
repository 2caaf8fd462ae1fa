// Real processes: a started child holds the run directory's lock until it exits, dies when the
// sweep dies (even by SIGKILL), runs in its own process group with the default signal handling
// although the sweep blocks signals, and a program that cannot be executed says why in its log.
#include "convforever/sweep/child_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "convforever/sweep/file_lock.h"
#include "gtest/gtest.h"

namespace cf::sweep {
namespace {

std::string TempDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(root ? root : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Gone, or a zombie nobody reaped yet.
bool IsDead(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

TEST(StartChild, HoldsTheInheritedLockUntilItExits) {
  const std::string dir = TempDir("lock");
  absl::StatusOr<FileLock> lock = FileLock::TryAcquire(dir + "/.train.lock", /*inheritable=*/true);
  ASSERT_TRUE(lock.ok()) << lock.status();
  absl::StatusOr<pid_t> pid = StartChild({"/bin/sleep", "30"}, dir + "/log", lock->fd());
  ASSERT_TRUE(pid.ok()) << pid.status();
  lock->WriteOwner(*pid);
  lock->Release();
  absl::StatusOr<FileLock> again = FileLock::TryAcquire(dir + "/.train.lock", true);
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(absl::IsUnavailable(again.status())) << again.status();
  EXPECT_NE(again.status().message().find("locked by pid " + std::to_string(*pid)),
            std::string::npos) << again.status();
  kill(*pid, SIGTERM);
  int status = 0;
  waitpid(*pid, &status, 0);
  EXPECT_TRUE(FileLock::TryAcquire(dir + "/.train.lock", true).ok());
}

TEST(StartChild, OwnProcessGroupAndDefaultSignalsThoughTheParentBlocksThem) {
  const std::string dir = TempDir("signals");
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &old);
  absl::StatusOr<pid_t> pid = StartChild({"/bin/sleep", "30"}, dir + "/log", -1);
  sigprocmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(pid.ok()) << pid.status();
  // setpgid runs in the child: give it a moment to get there.
  for (int i = 0; i < 1000 && getpgid(*pid) != *pid; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(getpgid(*pid), *pid);
  kill(*pid, SIGTERM);
  int status = 0;
  waitpid(*pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

TEST(StartChild, DiesWhenTheParentIsKilled) {
  const std::string dir = TempDir("pdeathsig");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t parent = fork();
  if (parent == 0) {
    absl::StatusOr<pid_t> child = StartChild({"/bin/sleep", "60"}, dir + "/log", -1);
    const pid_t p = child.ok() ? *child : -1;
    (void)!write(fds[1], &p, sizeof(p));
    pause();
    _exit(0);
  }
  pid_t child = -1;
  ASSERT_EQ(read(fds[0], &child, sizeof(child)), static_cast<ssize_t>(sizeof(child)));
  ASSERT_GT(child, 0);
  EXPECT_FALSE(IsDead(child));
  kill(parent, SIGKILL);
  int status = 0;
  waitpid(parent, &status, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!IsDead(child) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(IsDead(child)) << "pid " << child << " outlived its killed parent";
  if (!IsDead(child)) kill(child, SIGKILL);
}

TEST(StartChild, AppendsToTheLogAndSaysWhyExecFailed) {
  const std::string dir = TempDir("exec");
  std::ofstream(dir + "/log") << "earlier\n";
  absl::StatusOr<pid_t> ok = StartChild({"/bin/echo", "hello"}, dir + "/log", -1);
  ASSERT_TRUE(ok.ok());
  int status = 0;
  waitpid(*ok, &status, 0);
  absl::StatusOr<pid_t> bad = StartChild({dir + "/no_such_program"}, dir + "/log", -1);
  ASSERT_TRUE(bad.ok());
  waitpid(*bad, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 127) << status;
  const std::string log = ReadFile(dir + "/log");
  EXPECT_EQ(log.rfind("earlier\nhello\nsweep: cannot execute " + dir + "/no_such_program: ", 0), 0u)
      << log;
}

}  // namespace
}  // namespace cf::sweep
