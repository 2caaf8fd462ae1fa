// UploadFolder of a real checkpoint folder through FakeHub: basic and multipart LFS, regular
// files, skipped dot-files, re-upload of unchanged bytes, and transient failures mid-transfer.
#include "convforever/hub/upload_folder.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "convforever/hub/testing/fake_hub.h"
#include "gtest/gtest.h"

namespace cf::hub {
namespace {

using testing::FakeHub;
using testing::FakeHubOptions;
using testing::Fault;
using testing::ReadFileOrDie;
using testing::WriteFakeCheckpoint;

class UploadFolderTest : public ::testing::Test {
 protected:
  void Start(FakeHubOptions o = {}) {
    auto hub = FakeHub::Start(o);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(hub).value();
    HubClientOptions co;
    co.endpoint = hub_->endpoint();
    co.token = hub_->options().token;
    co.clock = &clock_;
    client_ = std::make_unique<HubClient>(co);
    ASSERT_TRUE(client_->CreateRepo(repo_, false).ok());
  }
  std::string Dir(const std::string& name) {
    return std::string(getenv("TEST_TMPDIR")) + "/" + name;
  }
  void ExpectStored(const std::string& dir, const std::string& prefix = "") {
    for (const char* f : {"model.safetensors", "config.json", "README.md"}) {
      auto stored = hub_->file("model", repo_.id, prefix + f);
      ASSERT_TRUE(stored.has_value()) << f;
      EXPECT_TRUE(*stored == ReadFileOrDie(dir + "/" + f)) << f;
    }
    EXPECT_TRUE(hub_->violations().empty()) << hub_->violations()[0];
    EXPECT_EQ(hub_->token_leaks(), 0);
  }

  std::unique_ptr<FakeHub> hub_;
  std::unique_ptr<HubClient> client_;
  http::FakeClock clock_;
  const RepoId repo_{"convforever/convnext-run1", RepoType::kModel};
};

TEST_F(UploadFolderTest, CheckpointThroughMultipartLfs) {
  Start();  // multipart from 2 MiB, 1 MiB parts
  const std::string dir = Dir("ckpt_multipart");
  ASSERT_TRUE(WriteFakeCheckpoint(dir, 3 * 1024 * 1024 + 4000, 1).ok());
  std::ofstream(dir + "/.model.safetensors.tmp.123") << "partial write, must be skipped";
  auto r = UploadFolder(*client_, dir, repo_, "", "step 100");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->lfs_files, 1);
  EXPECT_EQ(r->regular_files, 2);
  EXPECT_EQ(hub_->part_puts(), 4);  // 3 full parts + the remainder
  EXPECT_EQ(hub_->completions(), 1);
  EXPECT_EQ(hub_->verifies(), 1);
  EXPECT_EQ(hub_->basic_puts(), 0);
  EXPECT_EQ(hub_->commits(), 1);
  ExpectStored(dir);
  auto repo = hub_->repo("model", repo_.id);
  EXPECT_EQ(repo->files.size(), 3u);  // the dot-file stayed home
  EXPECT_TRUE(repo->files["model.safetensors"].lfs);
  EXPECT_EQ(repo->commit_summaries, std::vector<std::string>{"step 100"});
}

TEST_F(UploadFolderTest, CheckpointThroughBasicLfsIntoASubfolder) {
  Start();
  const std::string dir = Dir("ckpt_basic");
  ASSERT_TRUE(WriteFakeCheckpoint(dir, 300 * 1024, 2).ok());
  std::filesystem::create_directories(dir + "/logs");
  std::ofstream(dir + "/logs/empty.txt").close();
  auto r = UploadFolder(*client_, dir, repo_, "/checkpoints/last/", "basic");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->regular_files, 3);
  EXPECT_EQ(hub_->file("model", repo_.id, "checkpoints/last/logs/empty.txt"), "");
  EXPECT_EQ(hub_->basic_puts(), 1);
  EXPECT_EQ(hub_->part_puts(), 0);
  ExpectStored(dir, "checkpoints/last/");
}

TEST_F(UploadFolderTest, UnchangedLfsBytesAreNotSentTwice) {
  Start();
  const std::string dir = Dir("ckpt_twice");
  ASSERT_TRUE(WriteFakeCheckpoint(dir, 300 * 1024, 3).ok());
  ASSERT_TRUE(UploadFolder(*client_, dir, repo_, "", "one").ok());
  ASSERT_TRUE(UploadFolder(*client_, dir, repo_, "", "two").ok());
  EXPECT_EQ(hub_->basic_puts(), 1);
  EXPECT_EQ(hub_->commits(), 2);
  ExpectStored(dir);
}

TEST_F(UploadFolderTest, TransientFailuresDuringTransferAreRetried) {
  Start();
  const std::string dir = Dir("ckpt_flaky");
  ASSERT_TRUE(WriteFakeCheckpoint(dir, 3 * 1024 * 1024, 4).ok());
  hub_->InjectFault(Fault::kDrop, 1, "/part/2");
  hub_->InjectFault(Fault::k503, 2, "/part/3");
  hub_->InjectFault(Fault::k429, 1, "/lfs/objects/batch");
  hub_->InjectFault(Fault::k500, 1, "/lfs-complete/");
  auto r = UploadFolder(*client_, dir, repo_, "", "flaky");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(hub_->faults_served(), 5);
  EXPECT_EQ(client_->retries(), 5);
  EXPECT_EQ(hub_->part_puts(), 4);  // 3 MiB + the safetensors header: 4 parts, each accepted once
  ExpectStored(dir);
}

TEST_F(UploadFolderTest, RevokedTokenMidUploadIsFinalAndNamesTheRepo) {
  Start();
  const std::string dir = Dir("ckpt_401");
  ASSERT_TRUE(WriteFakeCheckpoint(dir, 300 * 1024, 5).ok());
  hub_->InjectFault(Fault::k401, 1, "/lfs/objects/batch");
  auto r = UploadFolder(*client_, dir, repo_, "", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "model repo convforever/convnext-run1"))
      << r.status();
  EXPECT_FALSE(absl::StrContains(r.status().message(), hub_->options().token));
  EXPECT_EQ(client_->retries(), 0);  // a 401 is not transient
  EXPECT_EQ(hub_->commits(), 0);
  EXPECT_TRUE(UploadFolder(*client_, dir, repo_, "", "again").ok());
}

TEST_F(UploadFolderTest, BadInputsNameTheCulprit) {
  Start();
  auto r = UploadFolder(*client_, Dir("does_not_exist"), repo_, "", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "does_not_exist")) << r.status();
  std::filesystem::create_directories(Dir("empty_dir/.hidden"));
  r = UploadFolder(*client_, Dir("empty_dir"), repo_, "", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "nothing to upload")) << r.status();
  std::ofstream(Dir("one.txt")) << "1";
  r = UploadFiles(*client_, repo_, {{Dir("one.txt"), "a.txt"}, {Dir("one.txt"), "a.txt"}}, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "repeated path in repo 'a.txt'")) << r.status();
  r = UploadFiles(*client_, {"bad id", RepoType::kModel}, {{Dir("one.txt"), "a.txt"}}, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "bad id")) << r.status();
  r = UploadFiles(*client_, repo_, {{Dir("missing.bin"), "m.bin"}}, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "missing.bin")) << r.status();
  EXPECT_EQ(hub_->commits(), 0);
}

}  // namespace
}  // namespace cf::hub
