#include "convforever/hub/upload_folder.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "convforever/base/status_macros.h"
#include "convforever/hub/sha256.h"

namespace cf::hub {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::string> ReadPrefix(const std::string& path, int64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path, " to upload"));
  std::string data(static_cast<size_t>(max_bytes), '\0');
  in.read(data.data(), max_bytes);
  if (in.bad()) return absl::DataLossError(absl::StrCat("read error in ", path));
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}

std::string JoinRepoPath(const std::string& prefix, const std::string& rel) {
  const std::string p(absl::StripSuffix(absl::StripPrefix(prefix, "/"), "/"));
  return p.empty() ? rel : p + "/" + rel;
}

}  // namespace

absl::StatusOr<std::vector<LocalFile>> ListFolder(const std::string& local_dir,
                                                  const std::string& path_in_repo) {
  std::error_code ec;
  if (!fs::is_directory(local_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("upload folder ", local_dir, " is not a directory"));
  }
  std::vector<LocalFile> files;
  fs::recursive_directory_iterator it(local_dir, ec), end;
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", local_dir, ": ", ec.message()));
  for (; it != end; it.increment(ec)) {
    if (ec) return absl::InternalError(absl::StrCat("cannot list ", local_dir, ": ", ec.message()));
    const std::string name = it->path().filename().string();
    if (absl::StartsWith(name, ".")) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    const std::string rel = fs::relative(it->path(), local_dir, ec).generic_string();
    files.push_back({it->path().string(), JoinRepoPath(path_in_repo, rel)});
  }
  if (files.empty()) return absl::NotFoundError(absl::StrCat("nothing to upload in ", local_dir));
  std::sort(files.begin(), files.end(),
            [](const LocalFile& a, const LocalFile& b) { return a.path_in_repo < b.path_in_repo; });
  return files;
}

namespace {

// Turns one preupload answer into a commit operation (and an LFS object for LFS files).
absl::Status PlanFile(const LocalFile& f, const PreuploadResult& mode, UploadResult* result,
                      std::vector<LfsObject>* lfs, std::vector<CommitOperation>* ops) {
  if (mode.should_ignore) {
    ++result->ignored_files;
    return absl::OkStatus();
  }
  std::error_code ec;
  const int64_t size = static_cast<int64_t>(fs::file_size(f.local_path, ec));
  // An empty file cannot be an LFS object; huggingface_hub commits it as regular too.
  if (mode.lfs && size != 0) {
    ASSIGN_OR_RETURN(FileDigest digest, Sha256File(f.local_path));
    lfs->push_back({f.path_in_repo, f.local_path, digest.sha256, digest.size});
    ops->push_back(CommitOperation::Lfs(f.path_in_repo, digest.sha256, digest.size));
    ++result->lfs_files;
    result->bytes += digest.size;
    return absl::OkStatus();
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot stat ", f.local_path, ": ", ec.message()));
  if (size > kMaxRegularFileBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        f.local_path, ": the Hub asked for a regular upload of ", size, " bytes; files over ",
        kMaxRegularFileBytes, " bytes must go through LFS"));
  }
  ASSIGN_OR_RETURN(std::string content, ReadPrefix(f.local_path, size + 1));
  result->bytes += static_cast<int64_t>(content.size());
  ops->push_back(CommitOperation::Regular(f.path_in_repo, std::move(content)));
  ++result->regular_files;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<UploadResult> UploadFiles(HubClient& client, const RepoId& repo,
                                         const std::vector<LocalFile>& files,
                                         const std::string& commit_message,
                                         const std::string& commit_description) {
  RETURN_IF_ERROR(ValidateRepoId(repo.id));
  if (files.empty()) return absl::InvalidArgumentError("UploadFiles: no files");
  std::vector<PreuploadFile> pre;
  std::map<std::string, const LocalFile*> by_path;
  for (const LocalFile& f : files) {
    if (f.path_in_repo.empty() || !by_path.emplace(f.path_in_repo, &f).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("UploadFiles: empty or repeated path in repo '", f.path_in_repo, "'"));
    }
    std::error_code ec;
    const auto size = fs::file_size(f.local_path, ec);
    if (ec) return absl::NotFoundError(absl::StrCat("cannot stat ", f.local_path, ": ", ec.message()));
    ASSIGN_OR_RETURN(std::string sample, ReadPrefix(f.local_path, 512));
    pre.push_back({f.path_in_repo, static_cast<int64_t>(size), std::move(sample)});
  }
  ASSIGN_OR_RETURN(std::vector<PreuploadResult> modes, client.Preupload(repo, pre));

  UploadResult result;
  std::vector<LfsObject> lfs;
  std::vector<CommitOperation> ops;
  for (const PreuploadResult& m : modes) {
    auto it = by_path.find(m.path_in_repo);
    if (it == by_path.end()) {
      return absl::DataLossError(absl::StrCat(repo.Describe(), ": preupload answered for ",
                                              m.path_in_repo, ", which was not asked about"));
    }
    RETURN_IF_ERROR(PlanFile(*it->second, m, &result, &lfs, &ops));
    by_path.erase(it);
  }
  if (!by_path.empty()) {
    return absl::DataLossError(absl::StrCat(repo.Describe(), ": preupload did not answer for ",
                                            by_path.begin()->first));
  }
  if (ops.empty()) return absl::FailedPreconditionError("every file was ignored by the Hub");
  RETURN_IF_ERROR(client.UploadLfs(repo, lfs));
  ASSIGN_OR_RETURN(result.commit, client.Commit(repo, commit_message, commit_description, ops));
  return result;
}

absl::StatusOr<UploadResult> UploadFolder(HubClient& client, const std::string& local_dir,
                                          const RepoId& repo, const std::string& path_in_repo,
                                          const std::string& commit_message,
                                          const std::string& commit_description) {
  ASSIGN_OR_RETURN(std::vector<LocalFile> files, ListFolder(local_dir, path_in_repo));
  return UploadFiles(client, repo, files, commit_message, commit_description);
}

}  // namespace cf::hub
