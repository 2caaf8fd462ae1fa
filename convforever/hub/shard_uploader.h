// ShardUploader: the caption classifier's sink for labeled shards. Each shard file (JSONL, one
// labeled record a line) is committed as `shard_<start>_<end>.jsonl` (records [start, end) of the
// run) to the dataset repo `ORG/ConvForever-data-attempt-N`, created on first use (private unless
// asked otherwise; an existing repo is fine). Uploads are synchronous and one commit per call;
// a caller that must not wait wraps them in its own thread (or uses AsyncUploader on a folder).
// Thread-safe: calls are serialized by a mutex.
#ifndef CONVFOREVER_HUB_SHARD_UPLOADER_H_
#define CONVFOREVER_HUB_SHARD_UPLOADER_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convforever/hub/hub_client.h"
#include "convforever/hub/upload_folder.h"

namespace cf::hub {

// "ORG/ConvForever-data-attempt-N"; the error names a bad org or attempt.
absl::StatusOr<std::string> ShardRepoId(const std::string& org, int attempt);
// "shard_<start>_<end>.jsonl"; requires 0 <= start < end.
std::string ShardFileName(int64_t start, int64_t end);

struct ShardUploaderOptions {
  std::string org;
  int attempt = 1;
  bool private_repo = true;
  std::string path_in_repo;  // folder in the repo ("" = root, e.g. "data" for datasets' layout)
};

struct Shard {
  std::string local_path;  // a JSONL file
  int64_t start = 0;       // first record index (inclusive)
  int64_t end = 0;         // last record index (exclusive)
};

class ShardUploader {
 public:
  // `client` is not owned and must outlive this object.
  ShardUploader(HubClient* client, ShardUploaderOptions options);

  // Validates options (repo id) without touching the network.
  absl::Status Validate() const;
  // One commit with one shard, or with several (a batch of shards as one commit).
  absl::StatusOr<UploadResult> Upload(const Shard& shard);
  absl::StatusOr<UploadResult> Upload(const std::vector<Shard>& shards);

  RepoId repo() const;
  int64_t shards_uploaded() const;

 private:
  HubClient* client_;
  const ShardUploaderOptions options_;
  mutable std::mutex mu_;
  bool created_ = false;         // guarded by mu_
  int64_t shards_uploaded_ = 0;  // guarded by mu_
};

}  // namespace cf::hub

#endif  // CONVFOREVER_HUB_SHARD_UPLOADER_H_
