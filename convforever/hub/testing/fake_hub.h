// FakeHub: a Hugging Face Hub-compatible HTTP server on 127.0.0.1 for tests, built on
// convforever/http/testing/test_server.h, and validated by the real huggingface_hub client
// (hf_interop_test). It implements the endpoints HubClient and huggingface_hub use and CHECKS what
// it receives, answering 4xx (with X-Error-Message) and recording a violation when a client gets
// the protocol wrong. Two servers, as on huggingface.co:
//  * the Hub (endpoint(), 127.0.0.1:<port>); Bearer token required unless noted:
//   GET  /api/whoami-v2
//   POST /api/repos/create                      409 when it exists; 403 for a foreign namespace
//   POST /api/{models,datasets}/R/preupload/main  lfs for binary samples or sizes > regular_max_size
//   POST /{datasets/}R.git/info/lfs/objects/batch  basic, or multipart (size >= multipart_threshold)
//   POST /lfs-complete/<oid>?Expires=&Signature=   presigned (no token needed): parts 1..N in
//                                               order with their ETags
//   POST /lfs-verify/<oid>                      the object is stored with that size
//   POST /api/{models,datasets}/R/commit/main   NDJSON: header first; file content valid base64;
//                                               lfsFile oid stored with that size; deletedFile exists
//   GET|HEAD /{datasets/}R/resolve/main/<path>  token optional for public repos (a wrong one is
//                                               401); regular files inline, LFS files 302 to storage
//  * storage (storage_url(), `storage_host`:<another port>, default "localhost": another origin),
//    like S3/CloudFront: every URL is presigned by the Hub (Expires + HMAC-SHA256 Signature in the
//    query string). A request with an Authorization header is refused 400 ("Only one auth
//    mechanism allowed", counted in token_leaks); a missing or wrong signature 403; an expired
//    URL 403 (set url_lifetime negative to hand out expired URLs).
//   PUT  /storage/<oid>, /storage/<oid>/part/<n>   sizes (every part but the last == chunk_size),
//                                                   sha256 of the bytes == oid; ETag per part
//   GET|HEAD /lfs/<oid>                             the object; `Range: bytes=a-b` gives 206/416
// Faults can be injected per path substring (either server): 429 with `RateLimit`, 503 (with or
// without Retry-After), 500, 401, dropped connections; SetDown(true) answers 503 to everything.
// Thread-safe. Test-only.
#ifndef CONVFOREVER_HUB_TESTING_FAKE_HUB_H_
#define CONVFOREVER_HUB_TESTING_FAKE_HUB_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "convforever/http/testing/test_server.h"

namespace cf::hub::testing {

struct FakeHubOptions {
  std::string token = "hf_FAKEfakeFAKEfake0123456789";
  std::string user = "tester";
  std::vector<std::string> orgs = {"convforever"};
  std::string token_role = "write";  // whoami-v2's auth.accessToken.role ("read", "write", "fineGrained")
  int64_t regular_max_size = 64 * 1024;            // larger files go to LFS
  int64_t multipart_threshold = 2 * 1024 * 1024;   // LFS objects this large go multipart
  int64_t chunk_size = 1024 * 1024;                // multipart part size
  bool verify = true;                              // offer a verify action
  std::string storage_host = "localhost";
  absl::Duration url_lifetime = absl::Hours(1);  // of presigned URLs; negative = already expired
};

enum class Fault { k429, k503, k503WithRetryAfter, k500, k401, kDrop };

struct FakeFile {
  std::string content;
  bool lfs = false;
};

struct FakeRepo {
  std::string type;  // "model" / "dataset"
  bool private_repo = false;
  std::map<std::string, FakeFile> files;  // the tree at the head of main
  std::vector<std::string> commit_summaries;
  std::string head_oid;  // 40 hex digits after the first commit
};

class FakeHub {
 public:
  static absl::StatusOr<std::unique_ptr<FakeHub>> Start(FakeHubOptions options = {});
  ~FakeHub();

  std::string endpoint() const;     // "http://127.0.0.1:<port>"
  std::string storage_url() const;  // "http://<storage_host>:<storage port>"
  const FakeHubOptions& options() const { return options_; }

  // The next `times` requests whose path contains `path_contains` get `fault`.
  void InjectFault(Fault fault, int times, const std::string& path_contains = "");
  // Forgets every injected fault not yet served: the Hub has recovered.
  void ClearFaults();
  // While down, every request is answered 503 without a retry hint.
  void SetDown(bool down);
  // While paused, requests hang (unanswered) until SetPaused(false) or destruction: a Hub that
  // stopped responding. requests_waiting() counts the hanging ones.
  void SetPaused(bool paused);
  int64_t requests_waiting() const;

  // `type` is "model" or "dataset".
  std::optional<FakeRepo> repo(const std::string& type, const std::string& id) const;
  std::optional<std::string> file(const std::string& type, const std::string& id,
                                  const std::string& path) const;
  // Protocol violations seen (empty for a correct client).
  std::vector<std::string> violations() const;
  // Requests to a presigned URL (storage, or the completion on the Hub) that carried an
  // Authorization header.
  int64_t token_leaks() const;
  // Storage requests refused for a missing, wrong or expired signature.
  int64_t unsigned_refusals() const;
  int64_t storage_gets() const;
  int64_t faults_served() const;
  int64_t basic_puts() const;
  int64_t part_puts() const;
  int64_t completions() const;
  int64_t verifies() const;
  int64_t commits() const;
  int64_t lfs_objects() const;
  http::testing::TestServer& server() { return *server_; }
  http::testing::TestServer& storage_server() { return *storage_; }

 private:
  struct Impl;
  FakeHub() = default;
  http::testing::ServerResponse Dispatch(const http::testing::ServerRequest& request);
  http::testing::ServerResponse DispatchStorage(const http::testing::ServerRequest& request);
  void WaitWhilePaused();

  FakeHubOptions options_;
  std::unique_ptr<Impl> impl_;
  mutable std::mutex pause_mu_;
  std::condition_variable pause_cv_;
  bool paused_ = false;        // guarded by pause_mu_
  int64_t waiting_ = 0;        // guarded by pause_mu_
  std::unique_ptr<http::testing::TestServer> server_;
  std::unique_ptr<http::testing::TestServer> storage_;
};

// Writes a small but real checkpoint folder into `dir` (created): model.safetensors (one F32
// tensor "head.fc.weight" of about `model_bytes` bytes, values from `seed`), a transformers-style
// config.json and a README.md.
absl::Status WriteFakeCheckpoint(const std::string& dir, int64_t model_bytes, int seed);

// Reads a whole file (tests compare it with what the FakeHub stored).
std::string ReadFileOrDie(const std::string& path);

}  // namespace cf::hub::testing

#endif  // CONVFOREVER_HUB_TESTING_FAKE_HUB_H_
