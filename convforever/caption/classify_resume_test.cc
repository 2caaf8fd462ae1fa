// Runs the real `classify` binary against the fake server, SIGKILLs it mid-run twice (once
// leaving a torn last line), reruns the same command, and checks that the output holds every
// input record exactly once with its right label, that records were written out of input order
// (some answers are slow or retried, and nothing waits for them), that the shards tile the
// output, and that the API key appears in no output, shard or log.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "convforever/caption/testing/fake_openai.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace cf::caption {
namespace {

using json = nlohmann::json;
constexpr char kKey[] = "sk-or-v1-KILLTEST-SECRET-42";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t CountLines(const std::string& path) {
  const std::string s = ReadAll(path);
  return std::count(s.begin(), s.end(), '\n');
}

std::string BinaryPath() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", ws ? ws : "convforever", "/convforever/caption/classify");
}

class ResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = testing::FakeOpenAi::Start(
        {.api_key = kKey, .latency = absl::Milliseconds(4), .slow_delay = absl::Milliseconds(1500)});
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(fake).value();
    dir_ = ::testing::TempDir() + "/resume";
    mkdir(dir_.c_str(), 0755);
    std::ofstream in(dir_ + "/in.jsonl");
    const char* animals[] = {"dog", "cat", "bird", "fish", "chair"};
    for (int i = 0; i < kRecords; ++i) {
      std::string caption = absl::StrCat("a ", animals[i % 5], " photo number ", i);
      if (i % 97 == 5) caption = "[[429ra]] " + caption;
      if (i % 89 == 7) caption = "[[malformed]] " + caption;
      if (i % 37 == 11) caption = "[[slow]] " + caption;  // answered 1.5 s late
      labels_[absl::StrCat("r", i)] = i % 5 == 4 ? "unknown" : animals[i % 5];  // chair: no category
      in << json{{"id", absl::StrCat("r", i)}, {"caption", caption}}.dump() << "\n";
    }
  }

  // Starts the binary; returns its pid.
  pid_t Spawn(int run) {
    const std::string bin = BinaryPath();
    std::vector<std::string> args = {bin,
                                     "--input=" + dir_ + "/in.jsonl",
                                     "--output=" + dir_ + "/out.jsonl",
                                     "--base_url=" + fake_->base_url(),
                                     "--model=test-model",
                                     "--concurrency=8",
                                     "--requests_per_minute=0",
                                     "--sync_every=50",
                                     "--max_attempts=4",
                                     "--timeout_s=5",
                                     "--progress=true",
                                     "--categories=convforever/caption/data/categories.txt"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string key_env = absl::StrCat("OPENROUTER_API_KEY=", kKey);
    std::vector<char*> envp = {key_env.data(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = absl::StrCat(dir_, "/run", run, ".log");
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(rc, 0) << "spawn " << bin;
    return pid;
  }

  // Waits until the output has `lines` lines, then SIGKILLs. False if the run ended first.
  bool KillAfter(pid_t pid, int64_t lines) {
    for (int i = 0; i < 6000; ++i) {
      int status;
      if (waitpid(pid, &status, WNOHANG) == pid) return false;
      if (CountLines(dir_ + "/out.jsonl") >= lines) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return true;
      }
      usleep(2000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    ADD_FAILURE() << "the run made no progress";
    return false;
  }

  static constexpr int kRecords = 600;
  std::unique_ptr<testing::FakeOpenAi> fake_;
  std::string dir_;
  std::map<std::string, std::string> labels_;  // id -> the right label
};

TEST_F(ResumeTest, KillNineTwiceThenFinishExactlyOnce) {
  ASSERT_TRUE(KillAfter(Spawn(0), 120)) << ReadAll(dir_ + "/run0.log");
  // Simulate the worst moment too: a record half written when the kill came.
  { std::ofstream(dir_ + "/out.jsonl", std::ios::app) << "{\"id\":\"r99999\",\"caption\":\"a do"; }
  ASSERT_TRUE(KillAfter(Spawn(1), 330)) << ReadAll(dir_ + "/run1.log");
  const pid_t last = Spawn(2);
  int status = 0;
  ASSERT_EQ(waitpid(last, &status, 0), last);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << ReadAll(dir_ + "/run2.log");

  // Exactly once, each with its right label, and not in input order: records were written as
  // their answers came, the slow and retried ones later.
  std::ifstream out(dir_ + "/out.jsonl");
  std::string line;
  std::vector<std::string> ids;
  std::set<std::string> unique;
  std::string concatenated;
  while (std::getline(out, line)) {
    const json rec = json::parse(line);
    const std::string id = rec["id"];
    ids.push_back(id);
    EXPECT_TRUE(unique.insert(id).second) << "written twice: " << id;
    EXPECT_EQ(rec["label"], labels_[id]) << line;
    EXPECT_FALSE(rec.contains("error")) << line;
    absl::StrAppend(&concatenated, line, "\n");
  }
  ASSERT_EQ(ids.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) ASSERT_EQ(unique.count(absl::StrCat("r", i)), 1u) << "missing r" << i;
  int out_of_order = 0;
  for (int i = 0; i < kRecords; ++i) out_of_order += ids[i] != absl::StrCat("r", i);
  EXPECT_GT(out_of_order, 0) << "every record was written in input order: did a slow one hold the rest back?";

  // Shards tile the output with no gap or overlap.
  std::vector<std::string> shards;
  DIR* d = opendir((dir_ + "/out.jsonl.shards").c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = readdir(d)) {
    if (std::string(e->d_name).rfind("shard_", 0) == 0) shards.push_back(e->d_name);
  }
  closedir(d);
  std::sort(shards.begin(), shards.end());
  std::string tiled;
  for (const auto& s : shards) tiled += ReadAll(dir_ + "/out.jsonl.shards/" + s);
  EXPECT_EQ(tiled, concatenated);
  EXPECT_EQ(shards.front(), "shard_000000000_000000050.jsonl");

  // The key is in no file the job wrote, and in none of its logs.
  for (const std::string& f : {std::string("/out.jsonl"), std::string("/run0.log"), std::string("/run1.log"),
                               std::string("/run2.log"), std::string("/out.jsonl.cache.sqlite")}) {
    EXPECT_EQ(ReadAll(dir_ + f).find("KILLTEST-SECRET"), std::string::npos) << f;
  }
  EXPECT_EQ(tiled.find("KILLTEST-SECRET"), std::string::npos);
  // The kills really were mid-run, the torn line was seen, and the last run resumed.
  EXPECT_EQ(ReadAll(dir_ + "/run0.log").find("records written"), std::string::npos);
  EXPECT_EQ(ReadAll(dir_ + "/run1.log").find("records written"), std::string::npos);
  EXPECT_NE(ReadAll(dir_ + "/run1.log").find("dropping a torn last line"), std::string::npos);
  const std::string final_log = ReadAll(dir_ + "/run2.log");
  EXPECT_NE(final_log.find("records written"), std::string::npos) << final_log;
  EXPECT_EQ(final_log.find("skipped: already in output 0,"), std::string::npos) << final_log;
}

TEST_F(ResumeTest, BadKeyExitsThree) {
  const std::string bin = BinaryPath();
  const std::string cmd = absl::StrCat("OPENROUTER_API_KEY=wrong ", bin, " --input=", dir_, "/in.jsonl",
                                       " --output=", dir_, "/bad.jsonl --base_url=", fake_->base_url(),
                                       " --progress=false",
                                       " --categories=convforever/caption/data/categories.txt > ", dir_,
                                       "/bad.log 2>&1");
  const int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 3);
  const std::string log = ReadAll(dir_ + "/bad.log");
  EXPECT_NE(log.find("HTTP 401"), std::string::npos) << log;
  EXPECT_EQ(log.find("wrong"), std::string::npos) << log;
}

}  // namespace
}  // namespace cf::caption
