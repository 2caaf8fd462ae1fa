// AsyncUploader: pushes training snapshots to ONE Hub repo from a background thread, so that the
// training loop never waits on the network.
//
//  * Submit(dir, message) only takes a mutex and returns: the snapshot becomes the pending one,
//    replacing a pending older snapshot that has not started uploading (only the latest matters).
//  * The worker creates the repo once per run (an existing repo is fine), then commits each
//    snapshot folder as one commit (UploadFolder) to the same repo: the repo history holds one
//    commit per snapshot, not one repo per checkpoint.
//  * A failed upload is logged (glog WARNING, no token) and counted; it is not retried in a loop:
//    the next Submit carries newer files and is tried instead. Flush() re-tries the last failed
//    snapshot once if nothing newer was submitted, for the final upload at the end of training.
//  * The destructor cancels an upload in flight (a body being sent stops at its next read; no new
//    request or retry starts) and waits up to `shutdown_grace` for the worker; a worker still
//    blocked on a silent server after that is detached and ends on its own (it owns its state),
//    so the end of training never hangs on the network. Call Flush() first for the last upload.
//  * Deletion of snapshot folders belongs to the uploader (keep_finished >= 0), because only it
//    knows which folder it is still reading: a folder is "finished" once it was uploaded, or
//    replaced while pending, or failed and then superseded by a newer Submit. The worker deletes
//    finished folders beyond the newest `keep_finished`; it never deletes the pending folder, the
//    one being uploaded, or a failed one that Flush() may still retry.
// Contract with the caller: a submitted folder must stay unchanged until the uploader is done
// with it, and the caller never deletes it when keep_finished >= 0. Thread-safe.
#ifndef CONVFOREVER_HUB_ASYNC_UPLOADER_H_
#define CONVFOREVER_HUB_ASYNC_UPLOADER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "convforever/hub/hub_client.h"

namespace cf::hub {

struct AsyncUploaderOptions {
  RepoId repo;
  bool private_repo = true;  // a run's snapshots are not published unless asked
  std::string path_in_repo;  // "" = repo root, so the repo loads as a model directly
  absl::Duration shutdown_grace = absl::Seconds(5);
  // -1: never delete a submitted folder. N >= 0: delete finished folders but the newest N.
  int keep_finished = -1;
};

struct AsyncUploaderCounters {
  int64_t submitted = 0;
  int64_t replaced = 0;   // pending snapshots superseded by a newer one before they started
  int64_t uploaded = 0;   // commits made
  int64_t failed = 0;     // upload attempts that failed
  int64_t deleted = 0;    // finished snapshot folders deleted (keep_finished >= 0)
  std::string last_uploaded_dir;
  std::string last_commit_oid;
  std::string last_error;  // "" after a success
};

class AsyncUploader {
 public:
  // Starts the worker thread. `client_options` carries the endpoint and token.
  AsyncUploader(HubClientOptions client_options, AsyncUploaderOptions options);
  ~AsyncUploader();
  AsyncUploader(const AsyncUploader&) = delete;
  AsyncUploader& operator=(const AsyncUploader&) = delete;

  // Queues `snapshot_dir` as the latest snapshot. Never blocks on the network.
  void Submit(std::string snapshot_dir, std::string commit_message);

  // Waits until nothing is pending or uploading; if the latest snapshot's upload failed, tries it
  // once more and waits again. Returns the status of the last upload attempt, or DEADLINE_EXCEEDED if
  // `timeout` passed first (the upload keeps going in the background).
  absl::Status Flush(absl::Duration timeout);

  AsyncUploaderCounters counters() const;

 private:
  struct State;  // shared with the worker thread, which may outlive this object (see destructor)
  std::shared_ptr<State> state_;
};

}  // namespace cf::hub

#endif  // CONVFOREVER_HUB_ASYNC_UPLOADER_H_
