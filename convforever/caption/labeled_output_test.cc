#include "convforever/caption/labeled_output.h"

#include <dirent.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace cf::caption {
namespace {

using json = nlohmann::ordered_json;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ListShards(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (std::string(e->d_name).rfind("shard_", 0) == 0) out.push_back(e->d_name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

class LabeledOutputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/out_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    mkdir(dir_.c_str(), 0755);
    options_ = {.path = dir_ + "/out.jsonl", .shard_dir = dir_ + "/shards", .sync_every = 2, .id_field = "id"};
  }
  std::unique_ptr<LabeledOutput> Open() {
    auto out = LabeledOutput::Open(options_, nullptr);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? std::move(out).value() : nullptr;
  }
  static json Rec(int i) { return json{{"id", absl::StrCat("r", i)}, {"caption", "c"}, {"label", "dog"}}; }
  std::string dir_;
  OutputOptions options_;
};

TEST_F(LabeledOutputTest, AppendsShardsAndResumes) {
  {
    auto out = Open();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(out->Append(Rec(i)).ok());
    ASSERT_TRUE(out->Finish().ok());
  }
  EXPECT_EQ(ListShards(options_.shard_dir),
            (std::vector<std::string>{"shard_000000000_000000002.jsonl", "shard_000000002_000000004.jsonl",
                                      "shard_000000004_000000005.jsonl"}));
  EXPECT_EQ(ReadAll(options_.shard_dir + "/shard_000000002_000000004.jsonl"),
            absl::StrCat(Rec(2).dump(), "\n", Rec(3).dump(), "\n"));
  auto out = Open();
  EXPECT_EQ(out->records(), 5);
  EXPECT_TRUE(out->Contains("\"r4\""));
  EXPECT_FALSE(out->Contains("\"r5\""));
  for (int i = 5; i < 8; ++i) ASSERT_TRUE(out->Append(Rec(i)).ok());
  ASSERT_TRUE(out->Finish().ok());
  // The next shards start where the partial one ended: names never overlap.
  const auto shards = ListShards(options_.shard_dir);
  ASSERT_EQ(shards.size(), 5u);
  EXPECT_EQ(shards[3], "shard_000000005_000000007.jsonl");
  EXPECT_EQ(shards[4], "shard_000000007_000000008.jsonl");
}

TEST_F(LabeledOutputTest, TornLastLineIsDropped) {
  {
    auto out = Open();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(out->Append(Rec(i)).ok());
  }
  { std::ofstream(options_.path, std::ios::app) << "{\"id\": \"r3\", \"capt"; }
  auto out = Open();
  EXPECT_EQ(out->records(), 3);
  EXPECT_GT(out->torn_bytes_dropped(), 0);
  EXPECT_FALSE(out->Contains("\"r3\""));
  ASSERT_TRUE(out->Append(Rec(3)).ok());
  ASSERT_TRUE(out->Finish().ok());
  std::string expected;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&expected, Rec(i).dump(), "\n");
  EXPECT_EQ(ReadAll(options_.path), expected);
}

TEST_F(LabeledOutputTest, ShardsOwedByAKilledRunAreRebuilt) {
  {
    auto out = Open();
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(out->Append(Rec(i)).ok());
    // Killed: no Finish(); then a shard goes missing too.
  }
  ASSERT_EQ(std::remove((options_.shard_dir + "/shard_000000002_000000004.jsonl").c_str()), 0);
  auto out = Open();
  EXPECT_EQ(ListShards(options_.shard_dir).size(), 3u);
  EXPECT_EQ(ReadAll(options_.shard_dir + "/shard_000000002_000000004.jsonl"),
            absl::StrCat(Rec(2).dump(), "\n", Rec(3).dump(), "\n"));
}

// HubShardSink keeps `.<shard>.uploaded` markers in the shard dir; they are not shards. Markers
// naming positions beyond the output would make a resume fail if they were taken for shards.
TEST_F(LabeledOutputTest, UploadMarkersAreNotShards) {
  {
    auto out = Open();
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(out->Append(Rec(i)).ok());
    ASSERT_TRUE(out->Finish().ok());
  }
  const std::string d = options_.shard_dir;
  for (const std::string name : {".shard_000000000_000000002.jsonl.uploaded", ".shard_000000006_000000010.jsonl.uploaded",
                                 "shard_000000006_000000010.jsonl.uploaded"}) {
    std::ofstream(d + "/" + name) << "convforever/data\n";
  }
  auto out = Open();
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->records(), 6);
  for (int i = 6; i < 8; ++i) ASSERT_TRUE(out->Append(Rec(i)).ok());
  ASSERT_TRUE(out->Finish().ok());
  EXPECT_EQ(ReadAll(d + "/shard_000000006_000000008.jsonl"), absl::StrCat(Rec(6).dump(), "\n", Rec(7).dump(), "\n"));
  EXPECT_EQ(ReadAll(d + "/.shard_000000000_000000002.jsonl.uploaded"), "convforever/data\n");
}

TEST_F(LabeledOutputTest, CorruptMiddleLineIsAnErrorNamingTheLine) {
  { std::ofstream(options_.path) << Rec(0).dump() << "\nnot json\n" << Rec(1).dump() << "\n"; }
  auto out = LabeledOutput::Open(options_, nullptr);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("out.jsonl:2"), std::string::npos) << out.status();
}

TEST_F(LabeledOutputTest, ShardsAheadOfTheOutputAreAnError) {
  {
    auto out = Open();
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(out->Append(Rec(i)).ok());
  }
  { std::ofstream(options_.path, std::ios::trunc) << Rec(0).dump() << "\n"; }
  auto out = LabeledOutput::Open(options_, nullptr);
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(out.status())) << out.status();
}

}  // namespace
}  // namespace cf::caption
