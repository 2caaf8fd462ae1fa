#include "convforever/hub/shard_uploader.h"

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convforever/hub/testing/fake_hub.h"
#include "gtest/gtest.h"

namespace cf::hub {
namespace {

using testing::FakeHub;
using testing::Fault;

std::string WriteShard(const std::string& name, int64_t start, int64_t end) {
  const std::string path = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
  std::ofstream out(path);
  for (int64_t i = start; i < end; ++i) {
    out << "{\"id\":" << i << ",\"url\":\"https://example.com/" << i
        << ".jpg\",\"caption\":\"a photo\",\"label\":\"cat\"}\n";
  }
  return path;
}

class ShardUploaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto hub = FakeHub::Start();
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(hub).value();
    HubClientOptions co;
    co.endpoint = hub_->endpoint();
    co.token = hub_->options().token;
    co.clock = &clock_;
    client_ = std::make_unique<HubClient>(co);
  }
  std::unique_ptr<FakeHub> hub_;
  http::FakeClock clock_;
  std::unique_ptr<HubClient> client_;
};

TEST_F(ShardUploaderTest, ShardsLandInTheAttemptDatasetRepo) {
  ShardUploader up(client_.get(), {"convforever", 3, false, ""});
  EXPECT_EQ(up.repo().id, "convforever/ConvForever-data-attempt-3");
  const std::string a = WriteShard("a.jsonl", 0, 500);
  const std::string b = WriteShard("b.jsonl", 500, 3000);  // > 64 KiB: goes through LFS
  ASSERT_TRUE(up.Upload({a, 0, 500}).ok());
  hub_->InjectFault(Fault::k429, 1, "/preupload/");
  auto r = up.Upload({b, 500, 3000});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->lfs_files, 1);
  const std::string id = "convforever/ConvForever-data-attempt-3";
  EXPECT_EQ(hub_->file("dataset", id, "shard_0_500.jsonl"), testing::ReadFileOrDie(a));
  EXPECT_EQ(hub_->file("dataset", id, "shard_500_3000.jsonl"), testing::ReadFileOrDie(b));
  EXPECT_EQ(hub_->repo("dataset", id)->commit_summaries,
            (std::vector<std::string>{"Add shard_0_500.jsonl", "Add shard_500_3000.jsonl"}));
  EXPECT_FALSE(hub_->repo("dataset", id)->private_repo);
  EXPECT_EQ(up.shards_uploaded(), 2);
  EXPECT_TRUE(hub_->violations().empty());
}

TEST_F(ShardUploaderTest, SeveralShardsInOneCommitUnderAFolder) {
  ShardUploader up(client_.get(), {"convforever", 1, true, "data/"});
  auto r = up.Upload(std::vector<Shard>{{WriteShard("c.jsonl", 0, 10), 0, 10},
                                        {WriteShard("d.jsonl", 10, 20), 10, 20}});
  ASSERT_TRUE(r.ok()) << r.status();
  auto repo = hub_->repo("dataset", "convforever/ConvForever-data-attempt-1");
  ASSERT_TRUE(repo.has_value());
  EXPECT_EQ(repo->files.size(), 2u);
  EXPECT_TRUE(repo->files.count("data/shard_10_20.jsonl"));
  EXPECT_EQ(repo->commit_summaries.size(), 1u);
}

TEST_F(ShardUploaderTest, BadInputsAreNamed) {
  ShardUploader bad_org(client_.get(), {"bad org", 1, true, ""});
  absl::Status s = bad_org.Validate();
  EXPECT_TRUE(absl::StrContains(s.message(), "bad org")) << s;
  ShardUploader up(client_.get(), {"convforever", 2, true, ""});
  auto r = up.Upload({WriteShard("e.jsonl", 0, 1), 5, 5});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "e.jsonl")) << r.status();
  r = up.Upload({"/nonexistent/shard.jsonl", 0, 5});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "/nonexistent/shard.jsonl")) << r.status();
  ShardUploader foreign(client_.get(), {"someone-else", 2, true, ""});
  r = foreign.Upload({WriteShard("f.jsonl", 0, 1), 0, 1});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(),
                                "dataset repo someone-else/ConvForever-data-attempt-2"))
      << r.status();
  EXPECT_EQ(hub_->commits(), 0);
}

}  // namespace
}  // namespace cf::hub
