#include "convforever/hub/async_uploader.h"

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/hub/upload_folder.h"
#include "glog/logging.h"

namespace cf::hub {

AsyncUploader::AsyncUploader(HubClientOptions client_options, AsyncUploaderOptions options)
    : options_(std::move(options)), client_(std::move(client_options)) {
  worker_ = std::thread([this] { Loop(); });
}

AsyncUploader::~AsyncUploader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  client_.Cancel();
  cv_.notify_all();
  worker_.join();
}

void AsyncUploader::Submit(std::string snapshot_dir, std::string commit_message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++counters_.submitted;
    if (pending_.has_value()) ++counters_.replaced;
    pending_ = Job{std::move(snapshot_dir), std::move(commit_message)};
    last_failed_.reset();  // the newer snapshot supersedes a failed older one
  }
  cv_.notify_all();
}

absl::Status AsyncUploader::Flush(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  bool retried = false;
  for (;;) {
    const bool idle = cv_.wait_until(lock, deadline, [this] {
      return stop_ || (!pending_.has_value() && !busy_);
    });
    if (!idle) {
      return absl::DeadlineExceededError(absl::StrCat(
          "hub upload to ", options_.repo.Describe(), " still running after ",
          absl::FormatDuration(timeout)));
    }
    // The final upload deserves one more try if the latest snapshot failed.
    if (retried || stop_ || !last_failed_.has_value()) return last_status_;
    pending_ = std::move(last_failed_);
    last_failed_.reset();
    retried = true;
    cv_.notify_all();
  }
}

AsyncUploaderCounters AsyncUploader::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

absl::Status AsyncUploader::Upload(const Job& job) {
  if (!repo_created_) {
    RETURN_IF_ERROR(client_.CreateRepo(options_.repo, options_.private_repo));
    repo_created_ = true;
  }
  ASSIGN_OR_RETURN(UploadResult result, UploadFolder(client_, job.dir, options_.repo,
                                                     options_.path_in_repo, job.message));
  std::lock_guard<std::mutex> lock(mu_);
  counters_.last_commit_oid = result.commit.commit_oid;
  return absl::OkStatus();
}

void AsyncUploader::Loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || pending_.has_value(); });
      if (stop_) return;
      job = std::move(*pending_);
      pending_.reset();
      busy_ = true;
    }
    const absl::Time start = absl::Now();
    const absl::Status status = Upload(job);
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = false;
      last_status_ = status;
      if (status.ok()) {
        ++counters_.uploaded;
        counters_.last_uploaded_dir = job.dir;
        counters_.last_error.clear();
        LOG(INFO) << "hub: uploaded " << job.dir << " to " << options_.repo.Describe()
                  << " (commit " << counters_.last_commit_oid << ") in "
                  << absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1)));
      } else {
        ++counters_.failed;
        counters_.last_error = std::string(status.message());
        if (!pending_.has_value()) last_failed_ = job;
        LOG(WARNING) << "hub: upload of " << job.dir << " failed (will try again with the next "
                     << "snapshot): " << status;
      }
    }
    cv_.notify_all();
  }
}

}  // namespace cf::hub
