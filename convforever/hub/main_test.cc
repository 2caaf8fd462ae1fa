// The `hub` binary as a user runs it: a child process with HF_ENDPOINT/HF_TOKEN pointing at a
// FakeHub on 127.0.0.1.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convforever/hub/hub_client.h"
#include "convforever/hub/sha256.h"
#include "convforever/hub/testing/fake_hub.h"
#include "gtest/gtest.h"

namespace cf::hub {
namespace {

struct CliRun {
  int code = -1;
  std::string output;  // stdout + stderr
};

CliRun RunHub(const std::vector<std::string>& args, const std::string& endpoint,
           const std::string& token) {
  const std::string out = absl::StrCat(getenv("TEST_TMPDIR"), "/hub_out.txt");
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("HF_ENDPOINT", endpoint.c_str(), 1);
    setenv("HF_TOKEN", token.c_str(), 1);
    std::FILE* f = std::freopen(out.c_str(), "w", stdout);
    (void)f;
    dup2(fileno(stdout), fileno(stderr));
    std::vector<char*> argv;
    const std::string bin = "convforever/hub/hub";
    argv.push_back(const_cast<char*>(bin.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CliRun run;
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.output = testing::ReadFileOrDie(out);
  return run;
}

class HubMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto hub = testing::FakeHub::Start();
    ASSERT_TRUE(hub.ok());
    hub_ = std::move(hub).value();
  }
  std::unique_ptr<testing::FakeHub> hub_;
};

TEST_F(HubMainTest, UploadsAFolderAndAFile) {
  const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/ckpt");
  ASSERT_TRUE(testing::WriteFakeCheckpoint(dir, 2500 * 1024, 7).ok());
  CliRun r = RunHub({"upload", dir, "--repo=convforever/cli-test", "--commit_message=cli"},
                 hub_->endpoint(), hub_->options().token);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "uploaded 3 files (1 through LFS")) << r.output;
  EXPECT_TRUE(hub_->file("model", "convforever/cli-test", "model.safetensors").has_value());
  r = RunHub({"upload", dir + "/config.json", "--repo", "convforever/cli-data", "--repo_type",
              "dataset", "--path_in_repo", "meta/config.json", "--private"},
             hub_->endpoint(), hub_->options().token);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(hub_->file("dataset", "convforever/cli-data", "meta/config.json"),
            testing::ReadFileOrDie(dir + "/config.json"));
  EXPECT_TRUE(hub_->repo("dataset", "convforever/cli-data")->private_repo);
  EXPECT_TRUE(hub_->violations().empty());
}

// `hub upload` through both LFS transfers (the fake stores objects of 2 MB and more multipart):
// storage never sees the token (the fake refuses it there, as S3 does), and every file downloaded
// back from the repo has the sha256 of the local file.
TEST_F(HubMainTest, UploadSendsNoTokenToStorageAndTheRepoHoldsTheFiles) {
  const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/lfs_both");
  ASSERT_TRUE(testing::WriteFakeCheckpoint(dir, 3 * 1024 * 1024, 11).ok());          // multipart
  ASSERT_TRUE(testing::WriteFakeCheckpoint(dir + "/basic", 700 * 1024, 12).ok());    // basic
  CliRun r = RunHub({"upload", dir, "--repo=convforever/cli-lfs"}, hub_->endpoint(),
                    hub_->options().token);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_GT(hub_->part_puts(), 1);
  EXPECT_EQ(hub_->basic_puts(), 1);
  EXPECT_EQ(hub_->token_leaks(), 0);
  EXPECT_TRUE(hub_->violations().empty()) << hub_->violations().front();
  for (const auto& req : hub_->storage_server().requests()) {
    EXPECT_FALSE(req.headers.Has("Authorization")) << req.method << " " << req.path;
  }
  HubClientOptions o;
  o.endpoint = hub_->endpoint();
  o.token = hub_->options().token;
  HubClient client(o);
  const RepoId repo{"convforever/cli-lfs", RepoType::kModel};
  for (const std::string path : {"model.safetensors", "config.json", "README.md",
                                 "basic/model.safetensors", "basic/config.json"}) {
    const std::string local = absl::StrCat(getenv("TEST_TMPDIR"), "/back_", hub_->commits(), "_",
                                           std::hash<std::string>()(path));
    auto n = client.DownloadFile(repo, path, local);
    ASSERT_TRUE(n.ok()) << path << ": " << n.status();
    EXPECT_EQ(Sha256File(local)->sha256, Sha256File(dir + "/" + path)->sha256) << path;
  }
  EXPECT_EQ(hub_->storage_gets(), 2);
}

TEST_F(HubMainTest, BadUsageAndBadTokenAreClear) {
  CliRun r = RunHub({"upload", "/tmp", "--repo=noslash"}, hub_->endpoint(), hub_->options().token);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(absl::StrContains(r.output, "noslash")) << r.output;
  r = RunHub({"frobnicate"}, hub_->endpoint(), hub_->options().token);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(absl::StrContains(r.output, "usage: hub upload")) << r.output;
  const std::string secret = "hf_CLIsecretCLIsecret42";
  r = RunHub({"upload", "/tmp", "--repo=convforever/x"}, hub_->endpoint(), secret);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(absl::StrContains(r.output, "model repo convforever/x")) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, secret)) << r.output;
}

}  // namespace
}  // namespace cf::hub
