#include "convforever/hub/shard_uploader.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "convforever/base/status_macros.h"

namespace cf::hub {

absl::StatusOr<std::string> ShardRepoId(const std::string& org, int attempt) {
  if (attempt < 0) {
    return absl::InvalidArgumentError(absl::StrCat("shard repo attempt ", attempt, " is negative"));
  }
  const std::string id = absl::StrCat(org, "/ConvForever-data-attempt-", attempt);
  RETURN_IF_ERROR(ValidateRepoId(id));
  return id;
}

std::string ShardFileName(int64_t start, int64_t end) {
  return absl::StrCat("shard_", start, "_", end, ".jsonl");
}

ShardUploader::ShardUploader(HubClient* client, ShardUploaderOptions options)
    : client_(client), options_(std::move(options)) {}

absl::Status ShardUploader::Validate() const {
  return ShardRepoId(options_.org, options_.attempt).status();
}

RepoId ShardUploader::repo() const {
  return {ShardRepoId(options_.org, options_.attempt).value_or(""), RepoType::kDataset};
}

int64_t ShardUploader::shards_uploaded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shards_uploaded_;
}

absl::StatusOr<UploadResult> ShardUploader::Upload(const Shard& shard) {
  return Upload(std::vector<Shard>{shard});
}

absl::StatusOr<UploadResult> ShardUploader::Upload(const std::vector<Shard>& shards) {
  RETURN_IF_ERROR(Validate());
  if (shards.empty()) return absl::InvalidArgumentError("no shards to upload");
  const std::string prefix(absl::StripSuffix(absl::StripPrefix(options_.path_in_repo, "/"), "/"));
  std::vector<LocalFile> files;
  for (const Shard& s : shards) {
    if (s.start < 0 || s.end <= s.start) {
      return absl::InvalidArgumentError(absl::StrCat("shard ", s.local_path, " has bad range [",
                                                     s.start, ", ", s.end, ")"));
    }
    const std::string name = ShardFileName(s.start, s.end);
    files.push_back({s.local_path, prefix.empty() ? name : prefix + "/" + name});
  }
  const RepoId id = repo();
  std::lock_guard<std::mutex> lock(mu_);
  if (!created_) {
    RETURN_IF_ERROR(client_->CreateRepo(id, options_.private_repo));
    created_ = true;
  }
  const std::string message =
      shards.size() == 1
          ? absl::StrCat("Add ", files[0].path_in_repo)
          : absl::StrCat("Add ", shards.size(), " shards (", files.front().path_in_repo, " .. ",
                         files.back().path_in_repo, ")");
  ASSIGN_OR_RETURN(UploadResult result, UploadFiles(*client_, id, files, message));
  shards_uploaded_ += static_cast<int64_t>(shards.size());
  return result;
}

}  // namespace cf::hub
