// AsyncUploader against FakeHub: snapshots committed to one repo, the latest replacing pending
// ones, failures retried at the next snapshot, and a training loop that never waits on a Hub that
// is down or hanging. Retry waits use a FakeClock; synchronization waits poll counters (no test
// asserts on wall-clock time).
#include "convforever/hub/async_uploader.h"

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "convforever/hub/testing/fake_hub.h"
#include "gtest/gtest.h"

namespace cf::hub {
namespace {

using testing::FakeHub;
using testing::Fault;
using testing::ReadFileOrDie;
using testing::WriteFakeCheckpoint;

constexpr absl::Duration kLong = absl::Seconds(50);

class AsyncUploaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto hub = FakeHub::Start();
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(hub).value();
  }
  std::unique_ptr<AsyncUploader> MakeUploader(int keep_finished = -1) {
    HubClientOptions co;
    co.endpoint = hub_->endpoint();
    co.token = hub_->options().token;
    co.clock = &clock_;
    AsyncUploaderOptions o{repo_, true, ""};
    o.keep_finished = keep_finished;
    return std::make_unique<AsyncUploader>(co, o);
  }
  std::string Snapshot(int step, int64_t bytes = 200 * 1024) {
    const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/", name_, "/step_", step);
    EXPECT_TRUE(WriteFakeCheckpoint(dir, bytes, step).ok());
    return dir;
  }
  template <typename Pred>
  void WaitFor(Pred pred) {  // polls; the test target's timeout bounds it
    while (!pred()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  void ExpectRepoHolds(const std::string& dir) {
    for (const char* f : {"model.safetensors", "config.json", "README.md"}) {
      auto stored = hub_->file("model", repo_.id, f);
      ASSERT_TRUE(stored.has_value()) << f;
      EXPECT_TRUE(*stored == ReadFileOrDie(dir + "/" + f)) << f << " differs from " << dir;
    }
  }

  std::unique_ptr<FakeHub> hub_;
  http::FakeClock clock_;
  const RepoId repo_{"convforever/run-42", RepoType::kModel};
  std::string name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
};

TEST_F(AsyncUploaderTest, SnapshotsAreCommitsToOneRepo) {
  auto up = MakeUploader();
  const std::string s1 = Snapshot(100, 3 * 1024 * 1024);  // multipart
  up->Submit(s1, "step 100");
  ASSERT_TRUE(up->Flush(kLong).ok());
  const std::string s2 = Snapshot(200, 3 * 1024 * 1024);
  up->Submit(s2, "step 200");
  ASSERT_TRUE(up->Flush(kLong).ok());
  auto repo = hub_->repo("model", repo_.id);
  ASSERT_TRUE(repo.has_value());
  EXPECT_TRUE(repo->private_repo);
  EXPECT_EQ(repo->commit_summaries, (std::vector<std::string>{"step 100", "step 200"}));
  ExpectRepoHolds(s2);
  EXPECT_EQ(hub_->completions(), 2);
  EXPECT_TRUE(hub_->violations().empty());
  const AsyncUploaderCounters c = up->counters();
  EXPECT_EQ(c.uploaded, 2);
  EXPECT_EQ(c.failed, 0);
  EXPECT_EQ(c.last_uploaded_dir, s2);
  EXPECT_FALSE(c.last_commit_oid.empty());
}

TEST_F(AsyncUploaderTest, NewerSnapshotReplacesAPendingOne) {
  auto up = MakeUploader();
  const std::string s1 = Snapshot(1), s2 = Snapshot(2), s3 = Snapshot(3);
  hub_->SetPaused(true);
  up->Submit(s1, "step 1");
  WaitFor([&] { return hub_->requests_waiting() > 0; });  // the worker is inside s1's upload
  up->Submit(s2, "step 2");
  up->Submit(s3, "step 3");  // s2 never started: dropped
  hub_->SetPaused(false);
  ASSERT_TRUE(up->Flush(kLong).ok());
  EXPECT_EQ(hub_->repo("model", repo_.id)->commit_summaries,
            (std::vector<std::string>{"step 1", "step 3"}));
  ExpectRepoHolds(s3);
  EXPECT_EQ(up->counters().replaced, 1);
  EXPECT_EQ(up->counters().submitted, 3);
}

TEST_F(AsyncUploaderTest, FailureIsRetriedWithTheNextSnapshot) {
  auto up = MakeUploader();
  hub_->InjectFault(Fault::k503, 7, "/api/");  // 5 attempts fail the first upload, 2 remain
  up->Submit(Snapshot(10), "step 10");
  absl::Status first = up->Flush(kLong);  // retries the failed one once: 2 more 503s, then OK
  EXPECT_TRUE(first.ok()) << first;
  EXPECT_EQ(up->counters().failed, 1);
  EXPECT_EQ(up->counters().uploaded, 1);

  hub_->SetDown(true);
  up->Submit(Snapshot(20), "step 20");
  WaitFor([&] { return up->counters().failed == 2; });
  EXPECT_EQ(up->counters().last_error.empty(), false);
  hub_->SetDown(false);
  const std::string s30 = Snapshot(30);
  up->Submit(s30, "step 30");
  ASSERT_TRUE(up->Flush(kLong).ok());
  EXPECT_EQ(hub_->repo("model", repo_.id)->commit_summaries,
            (std::vector<std::string>{"step 10", "step 30"}));
  ExpectRepoHolds(s30);
  EXPECT_TRUE(up->counters().last_error.empty());
}

// The trainer's view: a loop that snapshots every few steps while the Hub is hanging, then down.
// If Submit waited on the network this test would hang (and time out) instead of finishing.
TEST_F(AsyncUploaderTest, TrainingNeverWaitsForTheHub) {
  auto up = MakeUploader();
  hub_->SetPaused(true);
  std::string last;
  int steps = 0;
  for (int step = 1; step <= 40; ++step, ++steps) {
    if (step % 10 == 0) {
      last = Snapshot(step);
      up->Submit(last, absl::StrCat("step ", step));
    }
  }
  EXPECT_EQ(steps, 40);
  EXPECT_EQ(up->Flush(absl::Milliseconds(50)).code(), absl::StatusCode::kDeadlineExceeded);
  hub_->SetDown(true);
  hub_->SetPaused(false);
  EXPECT_FALSE(up->Flush(kLong).ok());  // final upload attempt fails while down: reported, no crash
  hub_->SetDown(false);
  ASSERT_TRUE(up->Flush(kLong).ok());  // the last snapshot, re-tried once
  ExpectRepoHolds(last);
  EXPECT_EQ(up->counters().submitted, 4);
}

TEST_F(AsyncUploaderTest, WrongTokenFailureNamesRepoNotToken) {
  HubClientOptions co;
  co.endpoint = hub_->endpoint();
  co.token = "hf_NOTtheRIGHTtoken000111";
  co.clock = &clock_;
  AsyncUploader up(co, AsyncUploaderOptions{repo_, true, ""});
  up.Submit(Snapshot(1), "step 1");
  absl::Status s = up.Flush(kLong);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  // last_error is exactly what was logged.
  const std::string logged = up.counters().last_error;
  EXPECT_NE(logged.find("model repo convforever/run-42"), std::string::npos) << logged;
  EXPECT_EQ(logged.find(co.token), std::string::npos) << logged;
  EXPECT_EQ(s.ToString().find(co.token), std::string::npos);
}

// The end of training with a Hub that stopped answering: destroying the uploader returns after
// the grace period instead of waiting for the request's own timeout (minutes).
TEST_F(AsyncUploaderTest, ShutdownDoesNotHangOnASilentServer) {
  HubClientOptions co;
  co.endpoint = hub_->endpoint();
  co.token = hub_->options().token;
  co.clock = &clock_;
  AsyncUploaderOptions uo{repo_, true, ""};
  uo.shutdown_grace = absl::Milliseconds(100);
  auto up = std::make_unique<AsyncUploader>(co, uo);
  hub_->SetPaused(true);
  up->Submit(Snapshot(1), "step 1");
  WaitFor([&] { return hub_->requests_waiting() > 0; });
  EXPECT_EQ(up->Flush(absl::Milliseconds(20)).code(), absl::StatusCode::kDeadlineExceeded);
  up.reset();  // returns after ~100 ms; the worker is left to finish when the server answers
  hub_->SetPaused(false);
  WaitFor([&] { return hub_->requests_waiting() == 0; });
  EXPECT_EQ(hub_->commits(), 0);  // cancelled: nothing more is sent
}

TEST_F(AsyncUploaderTest, MissingSnapshotFolderIsAFailureNotACrash) {
  auto up = MakeUploader();
  up->Submit("/nonexistent/step_5", "step 5");
  absl::Status s = up->Flush(kLong);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_NE(up->counters().last_error.find("/nonexistent/step_5"), std::string::npos);
}

bool Exists(const std::string& dir) { return std::filesystem::exists(dir); }

// The trainer used to prune its snapshot folders itself (keep the newest 3) while the uploader
// could still be reading an older one. Deletion now belongs to the uploader: four newer snapshots
// arrive while the first is still being uploaded to a Hub that hangs, and that folder survives
// until its upload is over; afterwards every finished folder but the newest is deleted.
TEST_F(AsyncUploaderTest, UploaderNeverDeletesTheFolderItIsReading) {
  auto up = MakeUploader(/*keep_finished=*/1);
  hub_->SetPaused(true);
  const std::string first = Snapshot(1, 3 * 1024 * 1024);
  up->Submit(first, "step 1");
  WaitFor([&] { return hub_->requests_waiting() > 0; });  // the worker is uploading `first`
  std::vector<std::string> newer;
  for (int step = 2; step <= 5; ++step) {
    newer.push_back(Snapshot(step));
    up->Submit(newer.back(), absl::StrCat("step ", step));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // give a wrong deletion a chance
  EXPECT_TRUE(Exists(first)) << "deleted while being uploaded";
  EXPECT_TRUE(Exists(newer.back())) << "the pending snapshot was deleted";
  hub_->SetPaused(false);
  ASSERT_TRUE(up->Flush(kLong).ok());
  WaitFor([&] { return up->counters().deleted == 4; });  // steps 1-4: uploaded or replaced
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(Exists(newer[i])) << newer[i];
  EXPECT_FALSE(Exists(first));
  EXPECT_TRUE(Exists(newer.back()));  // the newest finished one is kept
  ExpectRepoHolds(newer.back());
  EXPECT_EQ(hub_->repo("model", repo_.id)->commit_summaries,
            (std::vector<std::string>{"step 1", "step 5"}));
}

// A failed upload's folder stays for Flush()'s final retry and for `tools/cf hub upload`; once a
// newer snapshot supersedes it, it is finished and goes.
TEST_F(AsyncUploaderTest, FailedSnapshotIsKeptUntilSuperseded) {
  auto up = MakeUploader(/*keep_finished=*/0);
  hub_->SetDown(true);
  const std::string failed = Snapshot(1);
  up->Submit(failed, "step 1");
  WaitFor([&] { return up->counters().failed == 1; });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(Exists(failed));
  hub_->SetDown(false);
  const std::string next = Snapshot(2);
  up->Submit(next, "step 2");
  ASSERT_TRUE(up->Flush(kLong).ok());
  WaitFor([&] { return up->counters().deleted == 2; });
  EXPECT_FALSE(Exists(failed));
  EXPECT_FALSE(Exists(next));  // keep_finished = 0: uploaded and gone
}

}  // namespace
}  // namespace cf::hub
