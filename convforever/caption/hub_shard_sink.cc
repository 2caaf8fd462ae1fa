#include "convforever/caption/hub_shard_sink.h"

#include <dirent.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/atomic_file.h"
#include "convforever/base/status_macros.h"
#include "convforever/hub/upload_folder.h"
#include "glog/logging.h"

namespace cf::caption {
namespace {

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool IsShardName(const std::string& name) {
  return absl::StartsWith(name, "shard_") && absl::EndsWith(name, ".jsonl");
}

// Errors that no retry will cure: the run should stop before labeling anything.
bool IsFatalHubError(const absl::Status& s) {
  return absl::IsUnauthenticated(s) || absl::IsPermissionDenied(s) || absl::IsNotFound(s) ||
         absl::IsInvalidArgument(s);
}

std::string CommitMessage(const std::vector<std::string>& paths) {
  return paths.size() == 1 ? absl::StrCat("Add ", BaseName(paths[0]))
                           : absl::StrCat("Add ", paths.size(), " shards (", BaseName(paths.front()), " .. ",
                                          BaseName(paths.back()), ")");
}

}  // namespace

HubShardSink::HubShardSink(hub::HubClientOptions options, hub::RepoId repo, std::string shard_dir,
                           bool private_repo)
    : client_(std::make_unique<hub::HubClient>(std::move(options))),
      repo_(std::move(repo)),
      shard_dir_(std::move(shard_dir)),
      private_repo_(private_repo) {
  worker_ = std::thread([this] { Work(); });
}

HubShardSink::~HubShardSink() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void HubShardSink::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;  // what is still queued stays on disk for the next run's Close
    // Everything waiting goes in one commit: a slow Hub gets fewer, larger commits.
    std::vector<std::string> paths(queue_.begin(), queue_.end());
    queue_.clear();
    uploading_ = true;
    lock.unlock();
    if (absl::Status s = Commit(paths, CommitMessage(paths)); !s.ok()) {
      failed_ += static_cast<int64_t>(paths.size());
      LOG(WARNING) << "uploading " << CommitMessage(paths).substr(4) << " to " << repo_.Describe()
                   << " failed; it stays in " << shard_dir_ << " and is retried at the end of the run: "
                   << s.message();
    }
    lock.lock();
    uploading_ = false;
    cv_.notify_all();
  }
}

void HubShardSink::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return queue_.empty() && !uploading_; });
}

absl::StatusOr<std::unique_ptr<HubShardSink>> HubShardSink::Create(hub::HubClientOptions options,
                                                                   std::string repo_id, std::string shard_dir,
                                                                   bool private_repo) {
  if (absl::Status s = hub::ValidateRepoId(repo_id); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--hub_repo: ", s.message()));
  }
  if (shard_dir.empty()) return absl::InvalidArgumentError("HubShardSink needs a shard directory");
  hub::RepoId repo{std::move(repo_id), hub::RepoType::kDataset};
  std::unique_ptr<HubShardSink> sink(
      new HubShardSink(std::move(options), std::move(repo), std::move(shard_dir), private_repo));
  if (absl::Status s = sink->EnsureRepo(); !s.ok()) {
    if (IsFatalHubError(s)) return s;
    LOG(WARNING) << "cannot reach the Hub to create " << sink->repo_.Describe() << " (" << s.message()
                 << "); labeling goes on, uploads will retry";
  }
  return sink;
}

absl::Status HubShardSink::EnsureRepo() {
  if (created_) return absl::OkStatus();
  RETURN_IF_ERROR(client_->CreateRepo(repo_, private_repo_));
  created_ = true;
  return absl::OkStatus();
}

std::string HubShardSink::MarkerPath(const std::string& shard_path) {
  return absl::StrCat(DirName(shard_path), "/.", BaseName(shard_path), ".uploaded");
}

bool HubShardSink::Marked(const std::string& shard_path) const {
  std::ifstream in(MarkerPath(shard_path));
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str() == repo_.id + "\n";
}

std::vector<std::string> HubShardSink::PendingShards() const {
  std::vector<std::string> pending;
  DIR* d = opendir(shard_dir_.c_str());
  if (d == nullptr) return pending;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (!IsShardName(name)) continue;
    const std::string path = absl::StrCat(shard_dir_, "/", name);
    if (!Marked(path)) pending.push_back(path);
  }
  closedir(d);
  std::sort(pending.begin(), pending.end());
  return pending;
}

absl::Status HubShardSink::Commit(const std::vector<std::string>& paths, const std::string& message) {
  RETURN_IF_ERROR(EnsureRepo());
  std::vector<hub::LocalFile> files;
  for (const std::string& p : paths) files.push_back({p, BaseName(p)});
  RETURN_IF_ERROR(hub::UploadFiles(*client_, repo_, files, message).status());
  uploaded_ += static_cast<int64_t>(paths.size());
  for (const std::string& p : paths) {
    // A missing marker only costs a second (identical) upload by a later Close.
    if (absl::Status s = base::WriteFileAtomically(MarkerPath(p), repo_.id + "\n"); !s.ok()) {
      LOG(WARNING) << "uploaded " << p << " but cannot mark it: " << s;
    }
  }
  return absl::OkStatus();
}

absl::Status HubShardSink::Publish(const std::string& path, int64_t start, int64_t end) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(path);
  }
  cv_.notify_all();
  return absl::OkStatus();
}

absl::Status HubShardSink::Close() {
  Flush();
  const std::vector<std::string> pending = PendingShards();
  if (pending.empty()) return close_status_ = absl::OkStatus();
  if (absl::Status s = Commit(pending, CommitMessage(pending)); !s.ok()) {
    failed_ += static_cast<int64_t>(pending.size());
    close_status_ = absl::UnavailableError(absl::StrCat(pending.size(), " shard(s) in ", shard_dir_,
                                                        " not uploaded to ", repo_.Describe(), ": ",
                                                        s.message()));
    return close_status_;
  }
  LOG(INFO) << "uploaded " << pending.size() << " pending shard(s) to " << repo_.Describe() << " in one commit";
  return close_status_ = absl::OkStatus();
}

}  // namespace cf::caption
