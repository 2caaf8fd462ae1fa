// The trainer's Hub path end to end, for secrets: the train binary with --hub_repo and
// --upload_every=2 against FakeHub (whose storage is another origin that refuses any
// Authorization header, as S3 does), a --data_dir URL carrying user:password@ and a presigned
// X-Amz-Signature, and every output the run writes (checkpoints, metrics.jsonl, TensorBoard,
// Trackio, Hub snapshots and their model card). Once with model.safetensors in one basic LFS PUT,
// once in multipart (the Hub picks the transfer: the fake's threshold is lowered for that run).
// Checked:
//  * no request to storage carried Authorization (and the fake counted no token leak);
//  * model.safetensors, config.json and README.md downloaded back from the repo equal, by sha256,
//    the files of the newest snapshot folder <run_dir>/hub/step-N/;
//  * no file under the run directory (nor the trainer's log) holds the token, the password or the
//    signature, while the redacted URL is there (the flag was recorded, so the search means
//    something);
//  * at most the uploader's kept snapshot folders remain, and no folder disappeared before the
//    commit that uploads it reached the Hub (a watcher thread records when each folder goes away).
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "convforever/hub/hub_client.h"
#include "convforever/hub/sha256.h"
#include "convforever/hub/testing/fake_hub.h"
#include "gtest/gtest.h"

namespace cf::train {
namespace {

namespace fs = std::filesystem;

const char kTrainBinary[] = "convforever/train/train";
const char kRepo[] = "convforever/run-secrets";
// The secrets a user might put in a data URL; none may reach an output of the run.
const char kPassword[] = "pw-Hunter2Zebra77";
const char kSignature[] = "5e1f0c0ffee9a7b3d2c4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c8d0e2f4a6b8";
// The uploader keeps this many finished snapshot folders (kKeepFinishedSnapshots in hub_sync.cc).
constexpr size_t kKeptSnapshots = 2;
constexpr int kSteps = 10;

std::string TempDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  fs::path dir = fs::path(root ? root : "/tmp") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string DataUrl() {
  return absl::StrCat("https://cfuser:", kPassword,
                      "@data.example.com/shards/train-{000..009}.tar?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                      "&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-Signature=",
                      kSignature);
}

struct Outcome {
  int exit_code = -1;
  int signal = 0;
  std::string output;  // stdout + stderr
};

Outcome RunTrainer(const std::vector<std::string>& args, const std::string& log_path) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv = {const_cast<char*>(kTrainBinary)};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(kTrainBinary, argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  Outcome r;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.output = ReadFile(log_path);
  return r;
}

// Polls <run_dir>/hub/ and records, per snapshot folder, when it was last seen complete
// (model.safetensors, config.json, README.md all there) and when it first stopped being so.
class SnapshotWatcher {
 public:
  explicit SnapshotWatcher(std::string hub_dir)
      : hub_dir_(std::move(hub_dir)), thread_([this] { Loop(); }) {}
  ~SnapshotWatcher() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // step -> the time the folder was first seen incomplete after being complete (InfiniteFuture:
  // never).
  std::map<int64_t, absl::Time> gone() const {
    absl::MutexLock lock(&mu_);
    return gone_;
  }

 private:
  static bool Complete(const fs::path& dir) {
    std::error_code ec;
    for (const char* f : {"model.safetensors", "config.json", "README.md"}) {
      if (!fs::exists(dir / f, ec)) return false;
    }
    return true;
  }
  static bool StepOf(const std::string& name, int64_t* step) {
    return absl::StartsWith(name, "step-") && absl::SimpleAtoi(name.substr(5), step);
  }
  void Loop() {
    while (!stop_) {
      const absl::Time now = absl::Now();
      std::set<int64_t> complete;
      std::error_code ec;
      for (fs::directory_iterator it(hub_dir_, ec), end; !ec && it != end; it.increment(ec)) {
        int64_t step = 0;
        if (StepOf(it->path().filename().string(), &step) && Complete(it->path())) {
          complete.insert(step);
        }
      }
      {
        absl::MutexLock lock(&mu_);
        for (int64_t step : complete) gone_.emplace(step, absl::InfiniteFuture());
        for (auto& [step, when] : gone_) {
          if (!complete.count(step) && when == absl::InfiniteFuture()) when = now;
        }
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }

  const std::string hub_dir_;
  std::atomic<bool> stop_{false};
  mutable absl::Mutex mu_;
  std::map<int64_t, absl::Time> gone_;  // guarded by mu_
  std::thread thread_;
};

// Where each snapshot's commit arrived at the Hub: step -> received time (the first commit of it).
std::map<int64_t, absl::Time> CommitTimes(hub::testing::FakeHub& hub) {
  std::map<int64_t, absl::Time> out;
  const std::string marker = "ConvForever snapshot: step ";
  for (const auto& r : hub.server().requests()) {
    if (r.method != "POST" || !absl::StrContains(r.path, "/commit/")) continue;
    const size_t at = r.body.find(marker);
    if (at == std::string::npos) continue;
    size_t end = at + marker.size();
    while (end < r.body.size() && std::isdigit(static_cast<unsigned char>(r.body[end]))) ++end;
    int64_t step = 0;
    if (absl::SimpleAtoi(r.body.substr(at + marker.size(), end - at - marker.size()), &step)) {
      out.emplace(step, r.received);
    }
  }
  return out;
}

struct TransferCase {
  std::string name;
  bool multipart = false;
};
void PrintTo(const TransferCase& c, std::ostream* os) { *os << c.name; }

class TrainerHubSnapshotTest : public ::testing::TestWithParam<TransferCase> {};

TEST_P(TrainerHubSnapshotTest, NoSecretLeavesTheRunAndTheRepoHoldsTheNewestSnapshot) {
  const TransferCase& c = GetParam();
  hub::testing::FakeHubOptions hub_options;
  if (c.multipart) {
    // convnext_pico's model.safetensors is ~0.9 MB: multipart in 128 KiB parts.
    hub_options.multipart_threshold = 256 * 1024;
    hub_options.chunk_size = 128 * 1024;
  }
  auto started = hub::testing::FakeHub::Start(hub_options);
  ASSERT_TRUE(started.ok()) << started.status();
  hub::testing::FakeHub& hub = **started;
  const std::string token = hub.options().token;

  const std::string dir = TempDir("hub_snapshot_" + c.name);
  const std::string run_dir = dir + "/run";
  fs::create_directories(run_dir + "/hub");
  setenv("HF_ENDPOINT", hub.endpoint().c_str(), 1);
  setenv("HF_TOKEN", token.c_str(), 1);
  setenv("TRACKIO_DIR", (run_dir + "/trackio").c_str(), 1);
  // The first storage PUT (step 2's model.safetensors) waits out a 503 + Retry-After: 3, so the
  // later snapshots are written, replaced and pruned while that folder is being uploaded.
  hub.InjectFault(hub::testing::Fault::k503WithRetryAfter, 1, "/storage/");

  SnapshotWatcher watcher(run_dir + "/hub");
  const Outcome run = RunTrainer(
      {"--data=synthetic", "--data_dir=" + DataUrl(), "--synthetic_samples=256",
       "--synthetic_classes=4", "--image_size=16", "--micro_batch_size=8", "--num_workers=1",
       "--threads=1", "--log_every_steps=1", "--tensorboard=true",
       "--trackio_project=cf-hub-secrets", "--model=convnext_pico_fmnist", "--seed=7",
       absl::StrCat("--max_steps=", kSteps), "--checkpoint_every_steps=4", "--upload_every=2",
       absl::StrCat("--hub_repo=", kRepo), "--run_dir=" + run_dir},
      dir + "/train.log");
  watcher.Stop();
  unsetenv("HF_ENDPOINT");
  unsetenv("HF_TOKEN");
  unsetenv("TRACKIO_DIR");
  ASSERT_EQ(run.exit_code, 0) << "signal " << run.signal << "\n" << run.output;
  EXPECT_FALSE(absl::StrContains(run.output, "hub: upload of")) << run.output;  // "... failed"
  EXPECT_FALSE(absl::StrContains(run.output, "hub: final upload")) << run.output;
  EXPECT_EQ(hub.faults_served(), 1);

  // The transfer the Hub asked for.
  if (c.multipart) {
    // model.safetensors in parts; the curves' PNGs (LFS as binaries, but under the threshold)
    // each in one basic PUT.
    EXPECT_GT(hub.part_puts(), 1);
    EXPECT_GE(hub.completions(), 1);
  } else {
    EXPECT_GE(hub.basic_puts(), 1);
    EXPECT_EQ(hub.part_puts(), 0);
  }
  EXPECT_TRUE(hub.violations().empty()) << hub.violations().front();

  // The newest snapshot folder, and what is left of the others.
  std::vector<std::string> folders;
  for (const auto& e : fs::directory_iterator(run_dir + "/hub")) {
    folders.push_back(e.path().filename().string());
  }
  std::sort(folders.begin(), folders.end());
  const std::string newest = absl::StrFormat("step-%08d", kSteps);
  ASSERT_FALSE(folders.empty());
  EXPECT_EQ(folders.back(), newest);
  EXPECT_LE(folders.size(), kKeptSnapshots) << absl::StrJoin(folders, " ");
  const std::string snapshot = run_dir + "/hub/" + newest;

  // The repo's head is that snapshot: downloaded back, byte for byte (by sha256).
  std::optional<hub::testing::FakeRepo> repo = hub.repo("model", kRepo);
  ASSERT_TRUE(repo.has_value()) << run.output;
  ASSERT_FALSE(repo->commit_summaries.empty());
  EXPECT_TRUE(absl::EndsWith(repo->commit_summaries.back(), absl::StrCat("step ", kSteps)))
      << repo->commit_summaries.back();
  ASSERT_TRUE(repo->files.count("model.safetensors"));
  EXPECT_TRUE(repo->files.at("model.safetensors").lfs);
  hub::HubClientOptions client_options;
  client_options.endpoint = hub.endpoint();
  client_options.token = token;
  hub::HubClient client(client_options);
  for (const std::string path : {"model.safetensors", "config.json", "README.md"}) {
    const std::string local = dir + "/download-" + path;
    auto n = client.DownloadFile(hub::RepoId{kRepo, hub::RepoType::kModel}, path, local);
    ASSERT_TRUE(n.ok()) << path << ": " << n.status();
    auto got = hub::Sha256File(local);
    auto want = hub::Sha256File(snapshot + "/" + path);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(want.ok()) << want.status();
    EXPECT_EQ(got->sha256, want->sha256) << path;
    EXPECT_EQ(*n, want->size) << path;
  }
  EXPECT_GE(hub.storage_gets(), 1);  // model.safetensors came from storage

  // The card shows the run's curves, and the PNGs it names are in the repo, as valid PNGs.
  const std::string card = ReadFile(snapshot + "/README.md");
  for (const std::string plot : {"plots/train_loss.png", "plots/lr.png"}) {
    EXPECT_TRUE(absl::StrContains(card, "](" + plot + ")")) << card;
    ASSERT_TRUE(repo->files.count(plot)) << plot << " not in the repo";
    const std::string local = dir + "/download-" + fs::path(plot).filename().string();
    auto n = client.DownloadFile(hub::RepoId{kRepo, hub::RepoType::kModel}, plot, local);
    ASSERT_TRUE(n.ok()) << plot << ": " << n.status();
    EXPECT_EQ(ReadFile(local).substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << plot;
  }

  // The token went to the Hub's API only: never to storage (uploads and the download).
  EXPECT_EQ(hub.token_leaks(), 0);
  EXPECT_GT(hub.storage_server().request_count(), 0);
  for (const auto& r : hub.storage_server().requests()) {
    EXPECT_FALSE(r.headers.Has("Authorization")) << r.method << " " << r.path;
    EXPECT_FALSE(absl::StrContains(r.headers.DebugString() + r.path, token)) << r.path;
  }

  // No secret in any file of the run (nor in its log); the redacted URL is recorded where the
  // flags are, so the search is not vacuous.
  int64_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(run_dir)) {
    if (!e.is_regular_file()) continue;
    ++files;
    const std::string content = ReadFile(e.path().string());
    const std::string name = fs::relative(e.path(), run_dir).string();
    EXPECT_FALSE(absl::StrContains(content, token)) << "the Hub token in " << name;
    EXPECT_FALSE(absl::StrContains(content, kPassword)) << "the URL password in " << name;
    EXPECT_FALSE(absl::StrContains(content, kSignature)) << "the URL signature in " << name;
  }
  EXPECT_GT(files, 10);
  EXPECT_FALSE(absl::StrContains(run.output, token)) << "the Hub token in the log";
  EXPECT_FALSE(absl::StrContains(run.output, kPassword)) << "the URL password in the log";
  EXPECT_FALSE(absl::StrContains(run.output, kSignature)) << "the URL signature in the log";
  const std::string redacted = "https://data.example.com/shards/train-{000..009}.tar?";
  std::vector<std::string> tb_files;
  for (const auto& e : fs::recursive_directory_iterator(run_dir)) {
    if (absl::StrContains(e.path().filename().string(), "tfevents")) tb_files.push_back(e.path());
  }
  ASSERT_FALSE(tb_files.empty()) << "no TensorBoard events in " << run_dir;
  std::vector<std::string> recorded = {run_dir + "/metrics.jsonl", snapshot + "/README.md",
                                       tb_files.front()};
  for (const auto& e : fs::recursive_directory_iterator(run_dir + "/checkpoints")) {
    if (e.path().filename() == "trainer_state.json") recorded.push_back(e.path());
  }
  for (const auto& e : fs::recursive_directory_iterator(run_dir + "/trackio")) {
    if (e.is_regular_file() && absl::EndsWith(e.path().string(), ".db")) recorded.push_back(e.path());
  }
  EXPECT_GE(recorded.size(), 5u);
  for (const std::string& path : recorded) {
    const std::string content = ReadFile(path);
    EXPECT_TRUE(absl::StrContains(content, redacted)) << "no --data_dir recorded in " << path;
    EXPECT_TRUE(absl::StrContains(content, "X-Amz-Signature=REDACTED")) << path;
  }

  // Snapshot folders: none went away before its commit reached the Hub; the uploaded ones include
  // step 2 (uploaded through the retry, while later folders were pruned) and the newest.
  const std::map<int64_t, absl::Time> committed = CommitTimes(hub);
  const std::map<int64_t, absl::Time> gone = watcher.gone();
  EXPECT_TRUE(committed.count(2)) << run.output;
  EXPECT_TRUE(committed.count(kSteps)) << run.output;
  int64_t deleted = 0;
  for (const auto& [step, when] : gone) deleted += when != absl::InfiniteFuture();
  EXPECT_GE(deleted, 1) << "the uploader deleted no finished snapshot folder";
  for (const auto& [step, commit_time] : committed) {
    auto it = gone.find(step);
    ASSERT_NE(it, gone.end()) << "step " << step << " was committed but never seen on disk";
    EXPECT_GT(it->second, commit_time)
        << "snapshot step " << step << " was deleted before its commit reached the Hub";
  }
}

INSTANTIATE_TEST_SUITE_P(Transfers, TrainerHubSnapshotTest,
                         ::testing::Values(TransferCase{"basic", false}, TransferCase{"multipart", true}),
                         [](const ::testing::TestParamInfo<TransferCase>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace cf::train
