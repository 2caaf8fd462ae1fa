// HubClient's Git LFS half: the batch call, basic and multipart transfers, completion and verify.
// Shapes follow the git-lfs batch API and huggingface_hub's lfs.py (multipart part URLs are the
// digit keys "1".."N" of actions.upload.header, with chunk_size the size of every part but the
// last; the completion body lists {partNumber, etag} in part order).
#include <algorithm>
#include <cstdio>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"
#include "convforever/hub/hub_client.h"
#include "convforever/hub/hub_json.h"
#include "nlohmann/json.hpp"

namespace cf::hub {
namespace {

using nlohmann::json;

constexpr size_t kLfsBatch = 256;
constexpr char kLfsType[] = "application/vnd.git-lfs+json";

// Streams bytes [offset, offset + length) of a file; rewind() seeks back to `offset`. Reads fail
// (ending the transfer) once `cancelled` is set, so shutdown never waits for a multi-GB PUT.
absl::StatusOr<std::shared_ptr<http::BodyReader>> FileSliceBody(const std::string& path,
                                                                int64_t offset, int64_t length,
                                                                const std::atomic<bool>* cancelled) {
  std::FILE* raw = std::fopen(path.c_str(), "rb");
  if (raw == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", path, " to upload"));
  std::shared_ptr<std::FILE> file(raw, [](std::FILE* f) { std::fclose(f); });
  auto remaining = std::make_shared<int64_t>(length);
  auto seek = [file, offset, length, remaining]() {
    *remaining = length;
    return fseeko(file.get(), offset, SEEK_SET) == 0;
  };
  if (!seek()) return absl::OutOfRangeError(absl::StrCat("cannot seek ", path, " to ", offset));
  auto body = std::make_shared<http::BodyReader>();
  body->size = length;
  body->rewind = seek;
  body->read = [file, remaining, cancelled](char* buf, size_t len) -> int64_t {
    if (cancelled->load()) return -1;
    const size_t want = static_cast<size_t>(std::min<int64_t>(*remaining, len));
    if (want == 0) return 0;
    const size_t n = std::fread(buf, 1, want, file.get());
    if (n == 0) return -1;  // the file shrank under us, or a read error
    *remaining -= static_cast<int64_t>(n);
    return static_cast<int64_t>(n);
  };
  return body;
}

}  // namespace

absl::Status HubClient::UploadLfs(const RepoId& repo, const std::vector<LfsObject>& objects) {
  for (size_t begin = 0; begin < objects.size(); begin += kLfsBatch) {
    const size_t end = std::min(objects.size(), begin + kLfsBatch);
    json list = json::array();
    for (size_t i = begin; i < end; ++i) {
      list.push_back({{"oid", objects[i].oid}, {"size", objects[i].size}});
    }
    json payload = {{"operation", "upload"},
                    {"transfers", {"basic", "multipart"}},
                    {"objects", list},
                    {"hash_algo", "sha256"},
                    {"ref", {{"name", options_.revision}}}};
    http::Request req = ApiRequest("POST", LfsBatchUrl(repo));
    req.headers.Set("Accept", kLfsType);
    req.headers.Set("Content-Type", kLfsType);
    req.body = payload.dump();
    ASSIGN_OR_RETURN(http::Response resp, SendOk(req, options_.retry, &repo));
    absl::StatusOr<std::vector<LfsTransfer>> transfers =
        ParseLfsBatch(resp.body, absl::MakeConstSpan(objects).subspan(begin, end - begin));
    if (!transfers.ok()) {
      return absl::Status(transfers.status().code(),
                          Scrub(absl::StrCat(repo.Describe(), ": ", transfers.status().message())));
    }
    for (size_t i = begin; i < end; ++i) {
      RETURN_IF_ERROR(UploadOneLfs(repo, objects[i], (*transfers)[i - begin]));
    }
  }
  return absl::OkStatus();
}

absl::Status HubClient::UploadOneLfs(const RepoId& repo, const LfsObject& object,
                                     const LfsTransfer& transfer) {
  const std::string where = absl::StrCat(repo.Describe(), ", ", object.path_in_repo, ": ");
  if (transfer.upload) {
    absl::Status s = transfer.chunk_size > 0 ? UploadMultipart(object, transfer)
                                             : UploadBasic(object, transfer.href);
    if (!s.ok()) return absl::Status(s.code(), Scrub(absl::StrCat(where, s.message())));
  }
  if (transfer.verify_href) {
    // Verify is a Hub API call, authenticated with the token (lfs.py sends it the hf headers).
    absl::Status s = PostLfsJson(*transfer.verify_href,
                                 json{{"oid", object.oid}, {"size", object.size}}, Auth::kHubApi);
    if (!s.ok()) return absl::Status(s.code(), Scrub(absl::StrCat(where, s.message())));
  }
  return absl::OkStatus();
}

// The basic transfer is a plain PUT of the bytes to the presigned href: no token and none of the
// action's headers (lfs.py sends neither; the signature in the query string is the credential).
absl::Status HubClient::UploadBasic(const LfsObject& object, const std::string& href) {
  http::Request req = ApiRequest("PUT", href);
  req.timeout = options_.upload_timeout;
  ASSIGN_OR_RETURN(req.body_stream, FileSliceBody(object.local_path, 0, object.size, &cancelled_));
  ASSIGN_OR_RETURN(http::Response resp, SendOk(req, options_.retry, nullptr, Auth::kStorage));
  lfs_bytes_.fetch_add(object.size);
  return absl::OkStatus();
}

absl::Status HubClient::UploadMultipart(const LfsObject& object, const LfsTransfer& transfer) {
  const int64_t chunk = transfer.chunk_size;
  const int64_t want_parts = static_cast<int64_t>(transfer.part_urls.size());
  json etags = json::array();
  for (int64_t i = 0; i < want_parts; ++i) {
    const int64_t offset = i * chunk;
    const int64_t length = std::min(chunk, object.size - offset);
    http::Request req = ApiRequest("PUT", transfer.part_urls[i]);
    req.timeout = options_.upload_timeout;
    ASSIGN_OR_RETURN(req.body_stream,
                     FileSliceBody(object.local_path, offset, length, &cancelled_));
    ASSIGN_OR_RETURN(http::Response resp, SendOk(req, options_.retry, nullptr, Auth::kStorage));
    const std::optional<std::string> etag = resp.headers.Get("ETag");
    if (!etag || etag->empty()) {
      return absl::DataLossError(absl::StrCat("part ", i + 1, " of ", want_parts, " has no ETag"));
    }
    etags.push_back({{"partNumber", i + 1}, {"etag", *etag}});
    lfs_bytes_.fetch_add(length);
  }
  // The completion href is presigned too (its signature is in the query string): lfs.py posts
  // it with the LFS content headers only, no token.
  return PostLfsJson(transfer.href, json{{"oid", object.oid}, {"parts", etags}}, Auth::kStorage);
}

absl::Status HubClient::PostLfsJson(const std::string& href, const json& payload, Auth auth) {
  // No action headers: the completion's `header` holds the part URLs, not headers to send.
  http::Request req = ApiRequest("POST", href);
  if (auth == Auth::kStorage) {
    req.headers.Set("Accept", kLfsType);
    req.headers.Set("Content-Type", kLfsType);
  } else {
    req.headers.Set("Content-Type", "application/json");
  }
  req.body = payload.dump();
  ASSIGN_OR_RETURN(http::Response resp, SendOk(req, options_.retry, nullptr, auth));
  return absl::OkStatus();
}

}  // namespace cf::hub
