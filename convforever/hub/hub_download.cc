// HubClient::DownloadFile: the read path (resolve), used to check what an upload stored. The
// token goes to the Hub's resolve URL only; the redirect to storage (another origin) is followed
// by libcurl, which drops the Authorization header for another host, port or scheme
// (convforever/http/curl_transfer.cc sets CURLOPT_UNRESTRICTED_AUTH off).
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "convforever/base/status_macros.h"
#include "convforever/hub/hub_client.h"

namespace cf::hub {

absl::StatusOr<int64_t> HubClient::DownloadFile(const RepoId& repo, const std::string& path_in_repo,
                                                const std::string& local_path) {
  RETURN_IF_ERROR(ValidateRepoId(repo.id));
  const std::string url = absl::StrCat(
      options_.endpoint, repo.type == RepoType::kDataset ? "/datasets/" : "/", repo.id,
      "/resolve/", absl::StrReplaceAll(options_.revision, {{"/", "%2F"}}), "/", path_in_repo);
  http::Request req = ApiRequest("GET", url);
  req.timeout = options_.upload_timeout;
  req.follow_redirects = true;
  ASSIGN_OR_RETURN(http::Response resp, SendOk(req, options_.retry, &repo, Auth::kHubApi));
  const std::string tmp = local_path + ".part";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return absl::PermissionDeniedError(absl::StrCat("cannot create ", tmp));
  const size_t written = std::fwrite(resp.body.data(), 1, resp.body.size(), f);
  const bool closed = std::fclose(f) == 0;
  if (written != resp.body.size() || !closed || std::rename(tmp.c_str(), local_path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::DataLossError(absl::StrCat("cannot write ", local_path, " (", path_in_repo,
                                            " of ", repo.Describe(), ")"));
  }
  return static_cast<int64_t>(resp.body.size());
}

}  // namespace cf::hub
