// HubShardSink: the classifier's ShardSink for `--hub_repo ORG/NAME` (issues 8, 9). Each closed
// shard is committed to that Hugging Face dataset repo under its local file name
// (`shard_<start>_<end>.jsonl`, 9-digit zero-padded as LabeledOutput::ShardName writes it, so the
// repo matches the shard folder and a later `hub upload <shard_dir>` of the same folder replaces
// rather than duplicates), one commit per shard.
//
// Contract:
//  * Create() validates the repo id and creates the dataset repo (an existing one is fine) before
//    any labeling: a bad id or a refused token (401/403/404) is an error then. A Hub that is merely
//    unreachable at start is only a warning; creation is retried at the first upload.
//  * Publish() only queues the shard and returns: a background thread commits queued shards (all
//    that are waiting, in one commit), so a Hub that is slow, backing off or hanging never stalls
//    labeling. It never fails the run: an upload error is logged (HubClient scrubs the token from
//    every message) and counted, and the shard stays on disk. A success writes the marker
//    `<shard_dir>/.<shard name>.uploaded` (atomically; its content is the repo id, so a marker for
//    another repo does not count). The marker is a dot file so that UploadFolder (`hub upload`)
//    skips it and LabeledOutput's shard scan ignores it.
//  * Flush() waits until every published shard has been tried. Close() flushes, then commits, in
//    ONE commit, every `shard_*.jsonl` in shard_dir without a marker for this
//    repo (failed uploads of this run, and shards of earlier runs that were killed or offline: a
//    resumed run only Publishes shards it creates), marks them, and returns an error when that
//    commit fails (the shards are then local only). A shard is uploaded twice only if the process
//    dies between its commit and its marker (the second commit carries the same bytes).
// Publish/Flush/Close are called from one thread (the classifier's); the uploads run on the
// sink's own thread. The destructor waits for an upload in flight (HubClient's timeouts bound it).
#ifndef CONVFOREVER_CAPTION_HUB_SHARD_SINK_H_
#define CONVFOREVER_CAPTION_HUB_SHARD_SINK_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convforever/caption/shard_sink.h"
#include "convforever/hub/hub_client.h"

namespace cf::caption {

class HubShardSink : public ShardSink {
 public:
  // `repo_id` is ORG/NAME of a dataset repo, created private when `private_repo` and missing.
  static absl::StatusOr<std::unique_ptr<HubShardSink>> Create(hub::HubClientOptions options,
                                                              std::string repo_id, std::string shard_dir,
                                                              bool private_repo);

  ~HubShardSink() override;
  absl::Status Publish(const std::string& path, int64_t start, int64_t end) override;
  // Blocks until the background thread has tried every shard published so far.
  void Flush();
  absl::Status Close() override;

  // Path of the marker that says `shard_path` is in the repo.
  static std::string MarkerPath(const std::string& shard_path);
  // Shard files in shard_dir (full paths, sorted) without a marker for this repo.
  std::vector<std::string> PendingShards() const;

  const hub::RepoId& repo() const { return repo_; }
  int64_t uploaded() const { return uploaded_.load(); }  // shards committed by this sink
  int64_t failed() const { return failed_.load(); }      // shard uploads that failed (retried at Close)
  // Close()'s result (OK before Close): lets main() tell "labeled, not uploaded" apart.
  const absl::Status& close_status() const { return close_status_; }

 private:
  HubShardSink(hub::HubClientOptions options, hub::RepoId repo, std::string shard_dir, bool private_repo);
  absl::Status EnsureRepo();
  // One commit of `paths`; marks them on success.
  absl::Status Commit(const std::vector<std::string>& paths, const std::string& message);
  bool Marked(const std::string& shard_path) const;
  void Work();  // the uploader thread


  std::unique_ptr<hub::HubClient> client_;
  const hub::RepoId repo_;
  const std::string shard_dir_;
  const bool private_repo_;
  bool created_ = false;  // used by one thread at a time (the uploader, or Close after Flush)
  std::atomic<int64_t> uploaded_{0};
  std::atomic<int64_t> failed_{0};
  absl::Status close_status_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;  // guarded by mu_: published, not yet tried
  bool uploading_ = false;         // guarded by mu_
  bool stop_ = false;              // guarded by mu_
  std::thread worker_;
};

}  // namespace cf::caption

#endif  // CONVFOREVER_CAPTION_HUB_SHARD_SINK_H_
