// HubShardSink against the FakeHub, driven by the real LabeledOutput: names and bytes in the
// dataset repo, markers, an outage mid-run and the catch-up commit, a hanging Hub that must not
// stall appending, bad repo ids and tokens.
#include "convforever/caption/hub_shard_sink.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convforever/caption/labeled_output.h"
#include "convforever/http/rate_limiter.h"
#include "convforever/hub/hub_client.h"
#include "convforever/hub/sha256.h"
#include "convforever/hub/testing/fake_hub.h"
#include "gtest/gtest.h"

namespace cf::caption {
namespace {

using hub::testing::FakeHub;
constexpr char kRepo[] = "convforever/ConvForever-data-attempt-7";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

class HubShardSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto hub = FakeHub::Start();
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(hub).value();
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = absl::StrCat(::testing::TempDir(), "/", name);
    mkdir(dir_.c_str(), 0755);
    shards_ = dir_ + "/shards";
  }

  hub::HubClientOptions ClientOptions(const std::string& token = "") {
    hub::HubClientOptions o;
    o.endpoint = hub_->endpoint();
    o.token = token.empty() ? hub_->options().token : token;
    o.clock = &clock_;  // retries' backoff passes instantly
    return o;
  }

  std::unique_ptr<HubShardSink> MakeSink(bool private_repo = true) {
    auto sink = HubShardSink::Create(ClientOptions(), kRepo, shards_, private_repo);
    EXPECT_TRUE(sink.ok()) << sink.status();
    return sink.ok() ? std::move(sink).value() : nullptr;
  }

  std::unique_ptr<LabeledOutput> OpenOutput(ShardSink* sink) {
    auto out = LabeledOutput::Open({.path = dir_ + "/out.jsonl", .shard_dir = shards_, .sync_every = 3}, sink);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? std::move(out).value() : nullptr;
  }

  void Append(LabeledOutput* out, int from, int to) {
    for (int i = from; i < to; ++i) {
      ASSERT_TRUE(out->Append({{"id", absl::StrCat("r", i)}, {"caption", "a cat"}, {"label", "cat"}}).ok());
    }
  }

  std::string Shard(int64_t a, int64_t b) { return shards_ + "/" + LabeledOutput::ShardName(a, b); }
  std::vector<std::string> Commits() { return hub_->repo("dataset", kRepo)->commit_summaries; }

  std::unique_ptr<FakeHub> hub_;
  http::FakeClock clock_;
  std::string dir_, shards_;
};

TEST_F(HubShardSinkTest, ShardsLandUnderTheirLocalNamesWithTheirBytes) {
  auto sink = MakeSink();
  ASSERT_NE(sink, nullptr);
  auto out = OpenOutput(sink.get());
  ASSERT_NE(out, nullptr);
  Append(out.get(), 0, 7);
  ASSERT_TRUE(out->Finish().ok());
  ASSERT_TRUE(sink->Close().ok());
  const std::vector<std::pair<int, int>> ranges = {{0, 3}, {3, 6}, {6, 7}};
  for (const auto& [a, b] : ranges) {
    const std::string name = LabeledOutput::ShardName(a, b);
    EXPECT_EQ(hub_->file("dataset", kRepo, name), ReadAll(Shard(a, b))) << name;
    EXPECT_EQ(ReadAll(HubShardSink::MarkerPath(Shard(a, b))), absl::StrCat(kRepo, "\n"));
  }
  // One commit per batch of shards waiting when the uploader got to them, every shard in one.
  EXPECT_GE(Commits().size(), 1u);
  EXPECT_LE(Commits().size(), 3u);
  auto repo = hub_->repo("dataset", kRepo);
  EXPECT_TRUE(repo->private_repo);
  EXPECT_EQ(repo->files.size(), 3u);  // no marker went up
  EXPECT_EQ(sink->uploaded(), 3);
  EXPECT_EQ(sink->failed(), 0);
  EXPECT_TRUE(hub_->violations().empty());
}

// Shards over the Hub's LFS threshold (a fake Hub with small thresholds: 3 KB shards go multipart,
// the 1 KB last one basic): storage never sees the token (the fake refuses it there, as S3 does),
// and each shard downloaded back from the dataset repo has the local shard's sha256.
TEST_F(HubShardSinkTest, LfsShardsSendNoTokenToStorageAndDownloadBackIdentical) {
  hub::testing::FakeHubOptions o;
  o.regular_max_size = 256;
  o.multipart_threshold = 2048;
  o.chunk_size = 1024;
  auto hub = FakeHub::Start(o);
  ASSERT_TRUE(hub.ok()) << hub.status();
  hub_ = std::move(hub).value();
  auto sink = MakeSink(/*private_repo=*/false);
  ASSERT_NE(sink, nullptr);
  auto out = OpenOutput(sink.get());
  ASSERT_NE(out, nullptr);
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(out->Append({{"id", absl::StrCat("r", i)},
                             {"caption", std::string(1000, static_cast<char>('a' + i))},
                             {"label", "cat"}})
                    .ok());
  }
  ASSERT_TRUE(out->Finish().ok());
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_EQ(sink->uploaded(), 3);
  EXPECT_GT(hub_->part_puts(), 0);
  EXPECT_EQ(hub_->basic_puts(), 1);
  EXPECT_EQ(hub_->token_leaks(), 0);
  EXPECT_TRUE(hub_->violations().empty()) << hub_->violations().front();
  for (const auto& req : hub_->storage_server().requests()) {
    EXPECT_FALSE(req.headers.Has("Authorization")) << req.method << " " << req.path;
  }
  hub::HubClient client(ClientOptions());
  const hub::RepoId repo{kRepo, hub::RepoType::kDataset};
  for (const auto& [a, b] : std::vector<std::pair<int, int>>{{0, 3}, {3, 6}, {6, 7}}) {
    const std::string name = LabeledOutput::ShardName(a, b);
    const std::string back = dir_ + "/back_" + name;
    auto n = client.DownloadFile(repo, name, back);
    ASSERT_TRUE(n.ok()) << name << ": " << n.status();
    EXPECT_EQ(hub::Sha256File(back)->sha256, hub::Sha256File(Shard(a, b))->sha256) << name;
  }
  EXPECT_EQ(hub_->storage_gets(), 3);
}

TEST_F(HubShardSinkTest, OutageLeavesShardsLocalAndTheNextCloseCatchesUpInOneCommit) {
  {
    auto sink = MakeSink();
    ASSERT_NE(sink, nullptr);
    auto out = OpenOutput(sink.get());
    ASSERT_NE(out, nullptr);
    Append(out.get(), 0, 3);  // uploaded
    sink->Flush();
    hub_->SetDown(true);
    Append(out.get(), 3, 9);  // two shards fail: the run goes on
    ASSERT_TRUE(out->Finish().ok());
    sink->Flush();
    EXPECT_EQ(sink->failed(), 2);
    const absl::Status closed = sink->Close();  // still down
    EXPECT_TRUE(absl::IsUnavailable(closed)) << closed;
    EXPECT_TRUE(absl::StrContains(closed.message(), "2 shard(s)")) << closed;
    EXPECT_FALSE(sink->close_status().ok());
    EXPECT_FALSE(absl::StrContains(closed.message(), hub_->options().token));
    EXPECT_TRUE(Exists(HubShardSink::MarkerPath(Shard(0, 3))));
    EXPECT_TRUE(Exists(Shard(3, 6)) && Exists(Shard(6, 9)));
    EXPECT_FALSE(Exists(HubShardSink::MarkerPath(Shard(3, 6))));
    EXPECT_FALSE(Exists(HubShardSink::MarkerPath(Shard(6, 9))));
  }
  hub_->SetDown(false);
  // The rerun: its output resumes after the markers (LabeledOutput ignores them), it publishes only
  // its own shard, and Close commits the two left behind together.
  auto sink = MakeSink();
  ASSERT_NE(sink, nullptr);
  auto out = OpenOutput(sink.get());
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->records(), 9);
  Append(out.get(), 9, 12);
  ASSERT_TRUE(out->Finish().ok());
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_EQ(Commits(), (std::vector<std::string>{
                           "Add shard_000000000_000000003.jsonl", "Add shard_000000009_000000012.jsonl",
                           "Add 2 shards (shard_000000003_000000006.jsonl .. shard_000000006_000000009.jsonl)"}));
  for (const auto& [a, b] : std::vector<std::pair<int, int>>{{0, 3}, {3, 6}, {6, 9}, {9, 12}}) {
    EXPECT_EQ(hub_->file("dataset", kRepo, LabeledOutput::ShardName(a, b)), ReadAll(Shard(a, b)));
    EXPECT_TRUE(Exists(HubShardSink::MarkerPath(Shard(a, b))));
  }
  EXPECT_EQ(sink->uploaded(), 3);
  EXPECT_TRUE(sink->PendingShards().empty());
  // Nothing left: a further Close commits nothing.
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_EQ(hub_->commits(), 3);
  EXPECT_TRUE(hub_->violations().empty());
}

TEST_F(HubShardSinkTest, SameSinkCatchesUpAfterRecovery) {
  auto sink = MakeSink();
  ASSERT_NE(sink, nullptr);
  auto out = OpenOutput(sink.get());
  hub_->SetDown(true);
  Append(out.get(), 0, 6);
  EXPECT_FALSE(sink->Close().ok());
  hub_->SetDown(false);
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_EQ(Commits().size(), 1u);
  EXPECT_EQ(hub_->repo("dataset", kRepo)->files.size(), 2u);
}

TEST_F(HubShardSinkTest, HubDownAtStartIsOnlyAWarningAndTheRepoIsCreatedLater) {
  hub_->SetDown(true);
  auto sink = MakeSink(/*private_repo=*/false);
  ASSERT_NE(sink, nullptr);
  hub_->SetDown(false);
  auto out = OpenOutput(sink.get());
  Append(out.get(), 0, 3);
  sink->Flush();
  EXPECT_EQ(sink->uploaded(), 1);
  ASSERT_TRUE(hub_->repo("dataset", kRepo).has_value());
  EXPECT_FALSE(hub_->repo("dataset", kRepo)->private_repo);
}

TEST_F(HubShardSinkTest, AHangingHubDoesNotStallAppending) {
  auto sink = MakeSink();
  ASSERT_NE(sink, nullptr);
  auto out = OpenOutput(sink.get());
  ASSERT_NE(out, nullptr);
  hub_->SetPaused(true);  // every Hub request now hangs unanswered
  // 10 shards close while the Hub answers nothing: every Append must still return.
  auto appended = std::async(std::launch::async, [&] {
    Append(out.get(), 0, 30);
    return out->Finish();
  });
  if (appended.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    hub_->SetPaused(false);  // let the stuck Append finish before failing
    appended.wait();
    FAIL() << "appending waited for the Hub";
  }
  ASSERT_TRUE(appended.get().ok());
  EXPECT_EQ(out->shards_written(), 10);
  for (int i = 0; i < 3000 && hub_->requests_waiting() == 0; ++i) usleep(10000);
  EXPECT_GE(hub_->requests_waiting(), 1) << "the uploader should be stuck on the Hub meanwhile";
  EXPECT_EQ(sink->uploaded(), 0);
  hub_->SetPaused(false);
  ASSERT_TRUE(sink->Close().ok()) << sink->close_status();
  for (int a = 0; a < 30; a += 3) {
    EXPECT_EQ(hub_->file("dataset", kRepo, LabeledOutput::ShardName(a, a + 3)), ReadAll(Shard(a, a + 3)));
  }
  EXPECT_EQ(sink->uploaded(), 10);
  EXPECT_TRUE(hub_->violations().empty());
}

TEST_F(HubShardSinkTest, AMarkerForAnotherRepoDoesNotCount) {
  mkdir(shards_.c_str(), 0755);
  std::ofstream(Shard(0, 2)) << "{\"id\":\"a\"}\n{\"id\":\"b\"}\n";
  std::ofstream(HubShardSink::MarkerPath(Shard(0, 2))) << "someone/else\n";
  auto sink = MakeSink();
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(sink->PendingShards(), std::vector<std::string>{Shard(0, 2)});
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_EQ(ReadAll(HubShardSink::MarkerPath(Shard(0, 2))), absl::StrCat(kRepo, "\n"));
  EXPECT_EQ(hub_->file("dataset", kRepo, "shard_000000000_000000002.jsonl"), ReadAll(Shard(0, 2)));
}

TEST_F(HubShardSinkTest, BadRepoIdsAndRefusedTokensFailAtCreate) {
  for (const std::string bad : {"no-slash", "org/", "/name", "org/na me", "a/b/c", "org/../x"}) {
    auto sink = HubShardSink::Create(ClientOptions(), bad, shards_, true);
    ASSERT_FALSE(sink.ok()) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(sink.status())) << sink.status();
    EXPECT_TRUE(absl::StrContains(sink.status().message(), "'" + bad + "'")) << sink.status();
  }
  EXPECT_EQ(hub_->server().request_count(), 0);  // nothing reached the Hub

  const std::string wrong = "hf_WRONGwrongWRONG424242";
  auto refused = HubShardSink::Create(ClientOptions(wrong), kRepo, shards_, true);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::IsUnauthenticated(refused.status())) << refused.status();
  EXPECT_FALSE(absl::StrContains(refused.status().message(), wrong)) << refused.status();

  auto foreign = HubShardSink::Create(ClientOptions(), "someone-else/data", shards_, true);
  ASSERT_FALSE(foreign.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(foreign.status())) << foreign.status();
  EXPECT_TRUE(absl::StrContains(foreign.status().message(), "dataset repo someone-else/data"))
      << foreign.status();
  EXPECT_EQ(hub_->commits(), 0);
}

}  // namespace
}  // namespace cf::caption
