// HubClient: the Hugging Face Hub HTTP API the project uses, on the shared libcurl client
// (convforever/http): whoami, create repo, preupload, Git LFS uploads (basic and multipart
// transfers, completion, verify) and NDJSON commits. Protocol notes: /work/shared/FORMATS.md and
// huggingface_hub's hf_api.py, _commit_api.py, lfs.py.
//
// Contract:
//  * The token goes only into the Authorization header of calls to the Hub's own API (whoami,
//    create, preupload, LFS batch, verify, commit, resolve), and only when the URL is on the
//    endpoint's origin. Storage requests never carry an Authorization header, whatever their host:
//    the basic PUT, every multipart part PUT and the multipart completion POST go to presigned
//    URLs (the signature is in the query string; S3 answers 400 to a second auth mechanism), as
//    in huggingface_hub's lfs.py. A redirect to another origin (resolve -> CDN) is followed by
//    libcurl without the token (convforever/http/client.h). The token never reaches a log line or
//    a Status message: every message is scrubbed of it before it leaves this class.
//  * Retries as huggingface_hub does: 408, 429, 5xx and transport errors, exponential backoff
//    (1, 2, 4, 8, 8 s), a server hint (RateLimit `t`, Retry-After) honored plus one second. The
//    commit POST is the exception (see CommitRetryPolicy in hub_client.cc for why).
//  * 401/403/404 become UNAUTHENTICATED / PERMISSION_DENIED / NOT_FOUND errors naming the repo and
//    saying what to check; other failures name the method and (redacted) URL.
//  * Files are streamed from disk (hash, PUT bodies, multipart slices); only files the Hub asks to
//    be committed as regular (small text) files are read into memory, to base64 them.
// Thread-safe: every method may be called from any thread; Cancel() makes in-flight and later
// calls fail fast with CANCELLED (used by the background uploader's shutdown).
#ifndef CONVFOREVER_HUB_HUB_CLIENT_H_
#define CONVFOREVER_HUB_HUB_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "convforever/http/client.h"
#include "convforever/http/rate_limiter.h"
#include "convforever/http/retry.h"
#include "nlohmann/json_fwd.hpp"

namespace cf::hub {

enum class RepoType { kModel, kDataset };
// "model" / "dataset" (also accepts "models" / "datasets"); the error names the bad value.
absl::StatusOr<RepoType> ParseRepoType(absl::string_view name);
const char* RepoTypeName(RepoType type);  // "model" / "dataset"

struct RepoId {
  std::string id;  // "ORG/NAME"
  RepoType type = RepoType::kModel;
  // "model repo ORG/NAME": the phrase every error about this repo uses.
  std::string Describe() const;
};
// ORG/NAME with both parts non-empty and made of [A-Za-z0-9._-]; the error names the value.
absl::Status ValidateRepoId(absl::string_view id);

struct HubClientOptions {
  std::string endpoint = "https://huggingface.co";
  std::string token;  // empty: anonymous (writes then fail with a clear 401 error)
  std::string revision = "main";
  http::RetryPolicy retry;  // set to huggingface_hub's schedule by the constructor of Options
  http::Clock* clock = nullptr;  // sleeps between retries; nullptr = real time. Not owned.
  absl::Duration api_timeout = absl::Minutes(2);
  absl::Duration upload_timeout = absl::Hours(2);  // one LFS PUT (a whole file or one part)

  HubClientOptions();
  // endpoint from HF_ENDPOINT, token from ReadToken().
  static HubClientOptions FromEnvironment();
};

// The token as huggingface_hub finds it: $HF_TOKEN, else the file $HF_TOKEN_PATH, else
// $HF_HOME/token, else $XDG_CACHE_HOME/huggingface/token, else ~/.cache/huggingface/token.
// Whitespace trimmed; "" when none is set.
std::string ReadToken();

struct WhoAmI {
  std::string name;
  std::vector<std::string> orgs;
  // The token's role as whoami-v2 reports it (auth.accessToken.role: "read", "write",
  // "fineGrained"); empty when the answer does not say.
  std::string token_role;
};

struct PreuploadFile {
  std::string path_in_repo;
  int64_t size = 0;
  std::string sample;  // the first 512 bytes (sent base64)
};
struct PreuploadResult {
  std::string path_in_repo;
  bool lfs = false;
  bool should_ignore = false;
};

struct LfsObject {
  std::string path_in_repo;  // for messages
  std::string local_path;
  std::string oid;  // hex sha256
  int64_t size = 0;
};

struct CommitOperation {
  enum class Kind { kRegular, kLfs, kDelete };
  Kind kind = Kind::kRegular;
  std::string path_in_repo;
  std::string content;  // kRegular: the raw bytes (base64'd on the wire)
  std::string oid;      // kLfs
  int64_t size = 0;     // kLfs

  static CommitOperation Regular(std::string path, std::string content);
  static CommitOperation Lfs(std::string path, std::string oid, int64_t size);
  static CommitOperation Delete(std::string path);
};

struct CommitInfo {
  std::string commit_url;
  std::string commit_oid;
};

// The NDJSON body of a commit (one JSON object a line; exposed for tests and the fake Hub).
std::string CommitPayload(const std::string& summary, const std::string& description,
                          const std::vector<CommitOperation>& operations);

struct LfsTransfer;  // hub_json.h

class HubClient {
 public:
  explicit HubClient(HubClientOptions options);

  absl::StatusOr<WhoAmI> Whoami();
  // POST /api/repos/create. An existing repo (409) is success.
  absl::Status CreateRepo(const RepoId& repo, bool private_repo);
  // POST /api/{type}s/{repo}/preupload/{rev}, in batches of 256 files.
  absl::StatusOr<std::vector<PreuploadResult>> Preupload(const RepoId& repo,
                                                         const std::vector<PreuploadFile>& files);
  // LFS batch, then per object: nothing (already stored), a basic PUT or a multipart upload with
  // its completion, then verify when the server asks for it.
  absl::Status UploadLfs(const RepoId& repo, const std::vector<LfsObject>& objects);
  // POST /api/{type}s/{repo}/commit/{rev} with the NDJSON payload.
  absl::StatusOr<CommitInfo> Commit(const RepoId& repo, const std::string& summary,
                                    const std::string& description,
                                    const std::vector<CommitOperation>& operations);
  // GET {endpoint}/{datasets/}{repo}/resolve/{rev}/{path} into `local_path` (written whole, then
  // renamed), following a redirect to storage without the token. Returns the bytes written.
  absl::StatusOr<int64_t> DownloadFile(const RepoId& repo, const std::string& path_in_repo,
                                       const std::string& local_path);

  // Makes every in-flight and later call end with CANCELLED. Irreversible.
  void Cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  const HubClientOptions& options() const { return options_; }
  int64_t requests() const { return requests_.load(); }  // HTTP attempts
  int64_t retries() const { return retries_.load(); }
  int64_t lfs_bytes_uploaded() const { return lfs_bytes_.load(); }

 private:
  // kHubApi: the Hub's own API; the token is attached when the URL is on the endpoint's origin.
  // kStorage: a presigned URL; no Authorization header at all, even on the endpoint's origin.
  enum class Auth { kHubApi, kStorage };
  // One logical call with retries under `policy`; returns the final Response (any status) or a
  // transport error, messages scrubbed of the token.
  absl::StatusOr<http::Response> Send(http::Request request, const http::RetryPolicy& policy,
                                      Auth auth);
  // Send + turn a non-2xx into an error naming `repo` (nullptr: name the URL only).
  absl::StatusOr<http::Response> SendOk(http::Request request, const http::RetryPolicy& policy,
                                        const RepoId* repo, Auth auth = Auth::kHubApi);
  absl::Status ToError(const http::Request& request, const http::Response& response,
                       const RepoId* repo) const;
  std::string Scrub(std::string message) const;
  http::Request ApiRequest(const std::string& method, const std::string& url) const;
  std::string ApiUrl(const RepoId& repo, const std::string& action) const;
  std::string LfsBatchUrl(const RepoId& repo) const;
  bool IsEndpointUrl(const std::string& url) const;

  // hub_lfs.cc
  absl::Status UploadOneLfs(const RepoId& repo, const LfsObject& object,
                            const LfsTransfer& transfer);
  absl::Status UploadBasic(const LfsObject& object, const std::string& href);
  absl::Status UploadMultipart(const LfsObject& object, const LfsTransfer& transfer);
  absl::Status PostLfsJson(const std::string& href, const nlohmann::json& payload, Auth auth);

  const HubClientOptions options_;
  std::atomic<bool> cancelled_{false};
  std::atomic<int64_t> requests_{0};
  std::atomic<int64_t> retries_{0};
  std::atomic<int64_t> lfs_bytes_{0};
};

}  // namespace cf::hub

#endif  // CONVFOREVER_HUB_HUB_CLIENT_H_
