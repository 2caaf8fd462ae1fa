// Runs the real `classify` binary with --hub_repo against the FakeOpenAi and the FakeHub (found via
// HF_ENDPOINT / HF_TOKEN in its environment): shards land in the dataset repo byte for byte, commit
// failures mid-run are caught up in one commit at the end, a Hub failing to the end gives exit 4
// and a rerun uploads what was left, and bad repo ids or tokens stop the run before any labeling.
// Neither the API key nor the Hub token appears in any log.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convforever/caption/hub_shard_sink.h"
#include "convforever/caption/labeled_output.h"
#include "convforever/caption/testing/fake_openai.h"
#include "convforever/hub/testing/fake_hub.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace cf::caption {
namespace {

using hub::testing::FakeHub;
using hub::testing::Fault;
constexpr char kKey[] = "sk-or-v1-HUBTEST-SECRET-17";
constexpr char kRepo[] = "convforever/ConvForever-data-attempt-2";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::string BinaryPath() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", ws ? ws : "convforever", "/convforever/caption/classify");
}

class ClassifyHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = testing::FakeOpenAi::Start({.api_key = kKey});
    ASSERT_TRUE(fake.ok()) << fake.status();
    openai_ = std::move(fake).value();
    auto hub = FakeHub::Start();
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(hub).value();
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = absl::StrCat(::testing::TempDir(), "/", name);
    mkdir(dir_.c_str(), 0755);
    std::ofstream in(dir_ + "/in.jsonl");
    const char* animals[] = {"dog", "cat", "bird", "fish"};
    for (int i = 0; i < kRecords; ++i) {
      in << nlohmann::json{{"id", absl::StrCat("r", i)}, {"caption", absl::StrCat("a ", animals[i % 4], " ", i)}}
                .dump()
         << "\n";
    }
  }

  // Runs classify to the end with `hub_repo`; returns its exit code, its log in *log.
  int Run(const std::string& hub_repo, std::string* log, const std::string& token = "<hub>") {
    const std::string bin = BinaryPath();
    std::vector<std::string> args = {bin,
                                     "--input=" + dir_ + "/in.jsonl",
                                     "--output=" + dir_ + "/out.jsonl",
                                     "--base_url=" + openai_->base_url(),
                                     "--model=test-model",
                                     "--concurrency=4",
                                     "--requests_per_minute=0",
                                     "--sync_every=5",
                                     "--progress=false",
                                     "--hub_repo=" + hub_repo,
                                     "--categories=convforever/caption/data/categories.txt"};
    std::vector<std::string> env = {absl::StrCat("OPENROUTER_API_KEY=", kKey),
                                    "HF_ENDPOINT=" + hub_->endpoint(), "HOME=" + dir_};
    if (!token.empty()) env.push_back("HF_TOKEN=" + (token == "<hub>" ? hub_->options().token : token));
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string log_path = absl::StrCat(dir_, "/run", runs_++, ".log");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(rc, 0) << "spawn " << bin;
    int status = 0;
    waitpid(pid, &status, 0);
    *log = ReadAll(log_path);
    EXPECT_EQ(log->find("HUBTEST-SECRET"), std::string::npos) << *log;
    EXPECT_EQ(log->find(hub_->options().token), std::string::npos) << *log;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string Shard(int a, int b) { return dir_ + "/out.jsonl.shards/" + LabeledOutput::ShardName(a, b); }

  // Every shard of the 20 records is in the repo with the local bytes, and marked.
  void ExpectAllShardsInRepo() {
    for (int a = 0; a < kRecords; a += 5) {
      const std::string name = LabeledOutput::ShardName(a, a + 5);
      ASSERT_TRUE(Exists(Shard(a, a + 5))) << name;
      EXPECT_EQ(hub_->file("dataset", kRepo, name), ReadAll(Shard(a, a + 5))) << name;
      EXPECT_TRUE(Exists(HubShardSink::MarkerPath(Shard(a, a + 5)))) << name;
    }
    auto repo = hub_->repo("dataset", kRepo);
    ASSERT_TRUE(repo.has_value());
    EXPECT_EQ(repo->files.size(), 4u);
    EXPECT_TRUE(repo->private_repo);
    std::string concatenated;
    for (int a = 0; a < kRecords; a += 5) concatenated += *hub_->file("dataset", kRepo, LabeledOutput::ShardName(a, a + 5));
    EXPECT_EQ(concatenated, ReadAll(dir_ + "/out.jsonl"));
    EXPECT_TRUE(hub_->violations().empty());
  }

  static constexpr int kRecords = 20;
  std::unique_ptr<testing::FakeOpenAi> openai_;
  std::unique_ptr<FakeHub> hub_;
  std::string dir_;
  int runs_ = 0;
};

TEST_F(ClassifyHubTest, ShardsLandInTheDatasetRepoAndFailedCommitsAreCaughtUpOnce) {
  hub_->InjectFault(Fault::k500, 2, "/commit/");  // the first two shards' commits fail
  std::string log;
  ASSERT_EQ(Run(kRepo, &log), 0) << log;
  ExpectAllShardsInRepo();
  // Shards are committed from a background thread, which puts whatever is waiting into one
  // commit, so how they group depends on timing; every shard lands in exactly one commit.
  int committed = 0;
  const std::vector<std::string> summaries = hub_->repo("dataset", kRepo)->commit_summaries;
  for (const std::string& summary : summaries) {
    int n = 0;
    if (absl::StartsWith(summary, "Add shard_")) {
      n = 1;
    } else {
      const std::string count = summary.substr(4, summary.find(' ', 4) - 4);  // "Add N shards (...)"
      ASSERT_TRUE(absl::StartsWith(summary, "Add ") && absl::SimpleAtoi(count, &n)) << summary;
    }
    committed += n;
  }
  EXPECT_EQ(committed, 4);
  // The summary counts the shards in the two failed commits, as their warnings name them:
  // "uploading shard_... to ... failed" (one) or "uploading N shards (...) to ... failed" (N).
  int failed_commits = 0;
  int failed_shards = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    const size_t at = line.find("] uploading ");
    if (at == absl::string_view::npos || !absl::StrContains(line, " failed; it stays in ")) continue;
    const absl::string_view what = line.substr(at + 12);
    int n = 1;
    if (!absl::StartsWith(what, "shard_")) {
      ASSERT_TRUE(absl::SimpleAtoi(what.substr(0, what.find(' ')), &n)) << line;
    }
    ++failed_commits;
    failed_shards += n;
  }
  EXPECT_EQ(failed_commits, 2) << log;
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("hub: 4 shard(s) uploaded to dataset repo ", kRepo, ", ",
                                                  failed_shards, " failed upload(s)")))
      << log;
}

TEST_F(ClassifyHubTest, HubFailingToTheEndExitsFourAndARerunUploadsInOneCommit) {
  hub_->InjectFault(Fault::k500, 1000, "/commit/");  // every commit of the first run fails
  std::string log;
  ASSERT_EQ(Run(kRepo, &log), 4) << log;
  EXPECT_TRUE(absl::StrContains(log, "4 shard(s) in " + dir_ + "/out.jsonl.shards not uploaded")) << log;
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("tools/cf hub upload ", dir_, "/out.jsonl.shards --repo ",
                                                  kRepo, " --repo_type dataset")))
      << log;
  for (int a = 0; a < kRecords; a += 5) {
    EXPECT_TRUE(Exists(Shard(a, a + 5)));
    EXPECT_FALSE(Exists(HubShardSink::MarkerPath(Shard(a, a + 5))));
  }
  EXPECT_EQ(hub_->repo("dataset", kRepo)->files.size(), 0u);
  const int64_t labeled = openai_->completions();
  EXPECT_EQ(labeled, kRecords);

  hub_->ClearFaults();
  ASSERT_EQ(Run(kRepo, &log), 0) << log;  // the same command: nothing to label, uploads the rest
  EXPECT_EQ(openai_->completions(), labeled);
  ExpectAllShardsInRepo();
  EXPECT_EQ(hub_->repo("dataset", kRepo)->commit_summaries,
            (std::vector<std::string>{
                "Add 4 shards (shard_000000000_000000005.jsonl .. shard_000000015_000000020.jsonl)"}));
  ASSERT_EQ(Run(kRepo, &log), 0) << log;  // and a third run uploads nothing twice
  EXPECT_EQ(hub_->commits(), 1);
}

TEST_F(ClassifyHubTest, BadRepoIdOrTokenStopsBeforeAnyLabeling) {
  std::string log;
  EXPECT_EQ(Run("not a repo", &log), 2) << log;
  EXPECT_TRUE(absl::StrContains(log, "--hub_repo: repo id 'not a repo' is not of the form ORG/NAME")) << log;
  EXPECT_EQ(Run("convforever/", &log), 2) << log;
  EXPECT_TRUE(absl::StrContains(log, "'convforever/'")) << log;

  EXPECT_EQ(Run(kRepo, &log, /*token=*/""), 2) << log;  // no HF_TOKEN, no token file under $HOME
  EXPECT_TRUE(absl::StrContains(log, "no Hub token: set HF_TOKEN")) << log;
  const std::string wrong = "hf_WRONGtokenWRONG99";
  EXPECT_EQ(Run(kRepo, &log, wrong), 2) << log;
  EXPECT_EQ(log.find(wrong), std::string::npos) << log;
  EXPECT_TRUE(absl::StrContains(log, kRepo)) << log;
  EXPECT_EQ(Run("someone-else/data", &log), 2) << log;
  EXPECT_TRUE(absl::StrContains(log, "dataset repo someone-else/data")) << log;

  EXPECT_EQ(openai_->completions(), 0);
  EXPECT_FALSE(Exists(dir_ + "/out.jsonl"));
  EXPECT_EQ(hub_->commits(), 0);
}

}  // namespace
}  // namespace cf::caption
