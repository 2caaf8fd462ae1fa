#include "convforever/hub/async_uploader.h"

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/hub/upload_folder.h"
#include "glog/logging.h"

namespace cf::hub {

struct AsyncUploader::State {
  struct Job {
    std::string dir;
    std::string message;
  };
  State(HubClientOptions client_options, AsyncUploaderOptions o)
      : options(std::move(o)), client(std::move(client_options)) {}

  absl::Status Upload(const Job& job);
  void Loop();
  // Marks `dir` finished (under mu).
  void Retire(const std::string& dir);
  // Deletes finished folders beyond the newest options.keep_finished that nothing still needs.
  // Worker thread, without mu held (it takes it).
  void PruneFinished();

  const AsyncUploaderOptions options;
  HubClient client;
  bool repo_created = false;  // worker thread only

  std::mutex mu;
  std::condition_variable cv;
  std::optional<Job> pending;      // guarded by mu
  std::optional<Job> last_failed;  // guarded by mu
  bool busy = false;               // guarded by mu
  std::string uploading_dir;       // guarded by mu: the folder the worker is reading
  std::deque<std::string> finished;  // guarded by mu: oldest first
  bool stop = false;               // guarded by mu
  bool exited = false;             // guarded by mu: the worker returned
  absl::Status last_status;        // guarded by mu
  AsyncUploaderCounters counters;  // guarded by mu
};

AsyncUploader::AsyncUploader(HubClientOptions client_options, AsyncUploaderOptions options)
    : state_(std::make_shared<State>(std::move(client_options), std::move(options))) {
  std::thread([state = state_] { state->Loop(); }).detach();
}

AsyncUploader::~AsyncUploader() {
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->stop = true;
  state_->client.Cancel();
  state_->cv.notify_all();
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(state_->options.shutdown_grace);
  if (!state_->cv.wait_until(lock, deadline, [this] { return state_->exited; })) {
    LOG(WARNING) << "hub: upload to " << state_->options.repo.Describe()
                 << " still waiting on the server at shutdown; leaving it behind";
  }
}

void AsyncUploader::Submit(std::string snapshot_dir, std::string commit_message) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    ++state_->counters.submitted;
    if (state_->pending.has_value()) {
      ++state_->counters.replaced;
      state_->Retire(state_->pending->dir);
    }
    if (state_->last_failed.has_value()) state_->Retire(state_->last_failed->dir);
    state_->pending = State::Job{std::move(snapshot_dir), std::move(commit_message)};
    state_->last_failed.reset();  // the newer snapshot supersedes a failed older one
  }
  state_->cv.notify_all();
}

absl::Status AsyncUploader::Flush(absl::Duration timeout) {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  bool retried = false;
  for (;;) {
    const bool idle = s.cv.wait_until(lock, deadline, [&s] {
      return s.stop || (!s.pending.has_value() && !s.busy);
    });
    if (!idle) {
      return absl::DeadlineExceededError(absl::StrCat(
          "hub upload to ", s.options.repo.Describe(), " still running after ",
          absl::FormatDuration(timeout)));
    }
    // The final upload deserves one more try if the latest snapshot failed.
    if (retried || s.stop || !s.last_failed.has_value()) return s.last_status;
    s.pending = std::move(s.last_failed);
    s.last_failed.reset();
    retried = true;
    s.cv.notify_all();
  }
}

AsyncUploaderCounters AsyncUploader::counters() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->counters;
}

void AsyncUploader::State::Retire(const std::string& dir) {
  if (options.keep_finished < 0) return;
  for (auto it = finished.begin(); it != finished.end();) {
    it = *it == dir ? finished.erase(it) : it + 1;  // re-finished: now the newest
  }
  finished.push_back(dir);
}

void AsyncUploader::State::PruneFinished() {
  if (options.keep_finished < 0) return;
  std::vector<std::string> doomed;
  {
    std::lock_guard<std::mutex> lock(mu);
    const size_t keep = static_cast<size_t>(options.keep_finished);
    std::deque<std::string> kept;
    while (finished.size() > keep) {
      std::string dir = std::move(finished.front());
      finished.pop_front();
      const bool needed = dir == uploading_dir || (pending.has_value() && pending->dir == dir) ||
                          (last_failed.has_value() && last_failed->dir == dir);
      if (needed) {
        kept.push_back(std::move(dir));  // finished again later, when it is let go
      } else {
        doomed.push_back(std::move(dir));
      }
    }
    finished.insert(finished.begin(), kept.begin(), kept.end());
  }
  for (const std::string& dir : doomed) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (ec) LOG(WARNING) << "hub: cannot delete finished snapshot " << dir << ": " << ec.message();
    std::lock_guard<std::mutex> lock(mu);
    if (!ec) ++counters.deleted;
  }
}

absl::Status AsyncUploader::State::Upload(const Job& job) {
  if (!repo_created) {
    RETURN_IF_ERROR(client.CreateRepo(options.repo, options.private_repo));
    repo_created = true;
  }
  ASSIGN_OR_RETURN(UploadResult result, UploadFolder(client, job.dir, options.repo,
                                                     options.path_in_repo, job.message));
  std::lock_guard<std::mutex> lock(mu);
  counters.last_commit_oid = result.commit.commit_oid;
  return absl::OkStatus();
}

void AsyncUploader::State::Loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [this] { return stop || pending.has_value(); });
      if (stop) break;
      job = std::move(*pending);
      pending.reset();
      busy = true;
      uploading_dir = job.dir;
    }
    const absl::Time start = absl::Now();
    const absl::Status status = Upload(job);
    {
      std::lock_guard<std::mutex> lock(mu);
      busy = false;
      uploading_dir.clear();
      last_status = status;
      if (status.ok()) {
        Retire(job.dir);
        ++counters.uploaded;
        counters.last_uploaded_dir = job.dir;
        counters.last_error.clear();
        LOG(INFO) << "hub: uploaded " << job.dir << " to " << options.repo.Describe()
                  << " (commit " << counters.last_commit_oid << ") in "
                  << absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1)));
      } else if (!stop) {
        ++counters.failed;
        counters.last_error = std::string(status.message());
        if (pending.has_value()) {
          Retire(job.dir);  // superseded already: nothing will retry it
        } else {
          last_failed = job;
        }
        LOG(WARNING) << "hub: upload of " << job.dir << " failed (will try again with the next "
                     << "snapshot): " << status;
      }
    }
    PruneFinished();
    cv.notify_all();
  }
  std::lock_guard<std::mutex> lock(mu);
  exited = true;
  cv.notify_all();
}

}  // namespace cf::hub
