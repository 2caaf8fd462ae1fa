// Uploads local files to a Hub repo as ONE commit: preupload decides per file whether it goes as
// a regular (base64 in the commit) or an LFS file; LFS files are hashed and uploaded streamed
// from disk, then a single NDJSON commit adds every file. This is what huggingface_hub's
// upload_folder / create_commit do, without parallel transfers.
//
// UploadFolder walks `local_dir` recursively, in sorted order, skipping any path component that
// starts with '.' (temporary files of atomic writes, .git, .cache). Files must not change while
// they are uploaded (the Hub rejects an LFS object whose bytes do not match its hash). Thread-safe
// as HubClient is; the functions keep no state.
#ifndef CONVFOREVER_HUB_UPLOAD_FOLDER_H_
#define CONVFOREVER_HUB_UPLOAD_FOLDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/hub/hub_client.h"

namespace cf::hub {

struct LocalFile {
  std::string local_path;
  std::string path_in_repo;
};

struct UploadResult {
  CommitInfo commit;
  int regular_files = 0;
  int lfs_files = 0;
  int ignored_files = 0;
  int64_t bytes = 0;  // total size of the committed files
};

// Files Hub decides to commit as regular are read whole to base64 them; one larger than this is
// refused with an error rather than held in memory.
inline constexpr int64_t kMaxRegularFileBytes = 64 << 20;

// One commit adding (or replacing) `files`. `files` must be non-empty with distinct paths.
absl::StatusOr<UploadResult> UploadFiles(HubClient& client, const RepoId& repo,
                                         const std::vector<LocalFile>& files,
                                         const std::string& commit_message,
                                         const std::string& commit_description = "");

// The files under `local_dir` mapped to `path_in_repo` + their relative path ("" = repo root).
// An empty folder or a missing one is an error naming it.
absl::StatusOr<std::vector<LocalFile>> ListFolder(const std::string& local_dir,
                                                  const std::string& path_in_repo);

// ListFolder + UploadFiles.
absl::StatusOr<UploadResult> UploadFolder(HubClient& client, const std::string& local_dir,
                                          const RepoId& repo, const std::string& path_in_repo,
                                          const std::string& commit_message,
                                          const std::string& commit_description = "");

}  // namespace cf::hub

#endif  // CONVFOREVER_HUB_UPLOAD_FOLDER_H_
