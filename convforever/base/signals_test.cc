#include "convforever/base/signals.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace cf::base {
namespace {

TEST(Signals, FirstSignalSetsStopFlag) {
  ResetStopForTest();
  InstallStopHandlers();
  EXPECT_FALSE(StopRequested());
  ASSERT_EQ(raise(SIGTERM), 0);
  EXPECT_TRUE(StopRequested());
  EXPECT_EQ(StopSignal(), SIGTERM);
  ResetStopForTest();
}

TEST(Signals, SecondSignalExitsAtOnce) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ResetStopForTest();
    InstallStopHandlers();
    raise(SIGINT);
    if (!StopRequested()) _exit(1);
    raise(SIGINT);
    _exit(0);  // not reached: the second signal exits with 128 + SIGINT
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 128 + SIGINT);
}

TEST(Signals, RequestStopKeepsFirstReason) {
  ResetStopForTest();
  RequestStop(SIGTERM);
  RequestStop(SIGINT);
  EXPECT_EQ(StopSignal(), SIGTERM);
  ResetStopForTest();
}

}  // namespace
}  // namespace cf::base
