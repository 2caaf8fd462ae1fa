#include "convforever/base/atomic_file.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace cf::base {
namespace {

std::string TempDir() {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(root ? root : "/tmp") + "/atomic_XXXXXX";
  return mkdtemp(tmpl.data());
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int CountEntries(const std::string& dir) {
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (const dirent* e = readdir(d)) n += e->d_name[0] != '.' || std::string(e->d_name).size() > 2;
    closedir(d);
  }
  return n;
}

TEST(AtomicFile, WritesAndReplaces) {
  const std::string dir = TempDir();
  const std::string path = dir + "/out.txt";
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  EXPECT_EQ(ReadAll(path), "first");
  ASSERT_TRUE(WriteFileAtomically(path, std::string(1 << 20, 'x')).ok());
  EXPECT_EQ(ReadAll(path).size(), 1u << 20);
  EXPECT_EQ(CountEntries(dir), 1);  // no temporary left behind
}

TEST(AtomicFile, StreamingWriterAbortLeavesDestinationUntouched) {
  const std::string dir = TempDir();
  const std::string path = dir + "/ckpt.bin";
  ASSERT_TRUE(WriteFileAtomically(path, "old").ok());
  {
    AtomicFileWriter writer;
    ASSERT_TRUE(writer.Open(path).ok());
    ASSERT_TRUE(writer.Append("new-part-1").ok());
    // Destroyed without Commit(): as if an exception or error path left early.
  }
  EXPECT_EQ(ReadAll(path), "old");
  EXPECT_EQ(CountEntries(dir), 1);
}

TEST(AtomicFile, MissingDirectoryIsAClearError) {
  absl::Status s = WriteFileAtomically("/nonexistent-dir-cf/x.txt", "data");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("nonexistent-dir-cf"), absl::string_view::npos) << s;
}

// The worst moment: all bytes written and fsynced to the temp file, rename not yet done, and the
// process is SIGKILLed. The destination must hold the old contents, whole.
TEST(AtomicFile, SurvivesKillBetweenWriteAndRename) {
  const std::string dir = TempDir();
  const std::string path = dir + "/state.json";
  ASSERT_TRUE(WriteFileAtomically(path, "{\"step\": 1}").ok());

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    AtomicFileWriter writer;
    if (!writer.Open(path).ok() || !writer.Append("{\"step\": 2, \"big\": \"").ok()) _exit(2);
    writer.before_rename_for_test = [] { raise(SIGKILL); };
    (void)writer.Commit();
    _exit(3);  // not reached
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wstatus));
  EXPECT_EQ(WTERMSIG(wstatus), SIGKILL);

  EXPECT_EQ(ReadAll(path), "{\"step\": 1}");
  EXPECT_EQ(CountEntries(dir), 2);  // the destination plus the orphaned temporary
  EXPECT_EQ(RemoveStaleTempFiles(dir), 1);
  EXPECT_EQ(CountEntries(dir), 1);
  EXPECT_EQ(ReadAll(path), "{\"step\": 1}");
}

}  // namespace
}  // namespace cf::base
