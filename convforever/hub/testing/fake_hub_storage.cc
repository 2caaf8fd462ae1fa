// FakeHub's storage origin (presigned URLs, as S3/CloudFront serve them) and the Hub's resolve
// endpoint that redirects LFS downloads there.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "convforever/hub/sha256.h"
#include "convforever/hub/testing/fake_hub.h"
#include "convforever/hub/testing/fake_hub_impl.h"

namespace cf::hub::testing {
namespace {

std::string Hmac(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &n);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(out), n));
}

std::string QueryParam(const std::string& target, const std::string& name) {
  const size_t q = target.find('?');
  if (q == std::string::npos) return "";
  for (absl::string_view kv : absl::StrSplit(target.substr(q + 1), '&')) {
    if (absl::StartsWith(kv, name + "=")) return std::string(kv.substr(name.size() + 1));
  }
  return "";
}

}  // namespace

std::string FakeHub::Impl::Presign(const std::string& method, const std::string& base,
                                   const std::string& path) const {
  const int64_t expires = absl::ToUnixSeconds(absl::Now() + url_lifetime);
  return absl::StrCat(base, path, "?Expires=", expires, "&Signature=",
                      Hmac(signing_key, absl::StrCat(method, "\n", path, "\n", expires)));
}

std::optional<ServerResponse> FakeHub::Impl::CheckSignature(const ServerRequest& req,
                                                            const std::string& path) {
  const std::string expires = QueryParam(req.path, "Expires");
  const std::string signature = QueryParam(req.path, "Signature");
  int64_t expires_s = 0;
  if (expires.empty() || signature.empty() || !absl::SimpleAtoi(expires, &expires_s)) {
    ++unsigned_refusals;
    return Refuse(403, "AccessDenied: Query-string authentication requires the Signature and "
                       "Expires parameters");
  }
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  if (Hmac(signing_key, absl::StrCat(method, "\n", path, "\n", expires)) != signature) {
    ++unsigned_refusals;
    return Refuse(403, "SignatureDoesNotMatch: the request signature we calculated does not match "
                       "the signature you provided");
  }
  if (absl::FromUnixSeconds(expires_s) < absl::Now()) {
    ++unsigned_refusals;
    return Refuse(403, "AccessDenied: Request has expired");
  }
  return std::nullopt;
}

ServerResponse FakeHub::DispatchStorage(const ServerRequest& req) {
  WaitWhilePaused();
  const std::string path = req.path.substr(0, req.path.find('?'));
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (auto fault = impl_->TakeFault(path)) return *fault;
  const std::string host = req.headers.Get("Host").value_or("");
  if (host != absl::StrCat(options_.storage_host, ":", storage_->port())) {
    return impl_->Bad("storage request sent to host " + host);
  }
  // S3's answer to a presigned URL that also carries an Authorization header; for us it is also
  // the Hub token gone to a host that must never see it.
  if (req.headers.Has("Authorization")) {
    ++impl_->token_leaks;
    return impl_->Bad(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
        "query string parameter or the Authorization header should be specified (storage " +
        req.method + " " + path + ")");
  }
  if (auto refusal = impl_->CheckSignature(req, path)) return *refusal;
  if (req.method == "PUT" && absl::StartsWith(path, "/storage/")) {
    return impl_->StoragePut(options_, path, req.body);
  }
  if ((req.method == "GET" || req.method == "HEAD") && absl::StartsWith(path, "/lfs/")) {
    return impl_->StorageGet(path.substr(strlen("/lfs/")), req);
  }
  return Impl::Refuse(405, "storage does not take " + req.method + " " + path);
}

ServerResponse FakeHub::Impl::StorageGet(const std::string& oid, const ServerRequest& req) {
  auto it = lfs.find(oid);
  if (it == lfs.end()) return Refuse(404, "NoSuchKey: " + oid);
  ++storage_gets;
  const std::string& bytes = it->second;
  const std::string range = req.headers.Get("Range").value_or("");
  ServerResponse r = ServerResponse::Text(200, bytes);
  r.headers.Set("Content-Type", "application/octet-stream");
  r.headers.Set("ETag", "\"" + oid + "\"");
  r.headers.Set("Accept-Ranges", "bytes");
  if (range.empty()) return r;
  // bytes=a-b or bytes=a- (one range only, as huggingface_hub sends for a resumed download)
  int64_t first = 0, last = static_cast<int64_t>(bytes.size()) - 1;
  std::vector<std::string> ab = absl::StrSplit(absl::StripPrefix(range, "bytes="), '-');
  if (!absl::StartsWith(range, "bytes=") || ab.size() != 2 || !absl::SimpleAtoi(ab[0], &first) ||
      (!ab[1].empty() && !absl::SimpleAtoi(ab[1], &last))) {
    return Bad("unsupported Range header: " + range);
  }
  const int64_t size = static_cast<int64_t>(bytes.size());
  if (first >= size || last < first) {
    ServerResponse e = Refuse(416, "InvalidRange: " + range);
    e.headers.Set("Content-Range", absl::StrCat("bytes */", size));
    return e;
  }
  last = std::min(last, size - 1);
  r.status = 206;
  r.body = bytes.substr(first, last - first + 1);
  r.headers.Set("Content-Range", absl::StrCat("bytes ", first, "-", last, "/", size));
  return r;
}

ServerResponse FakeHub::Impl::Resolve(const std::string& storage, const FakeRepo& repo,
                                      const std::string& path) {
  auto it = repo.files.find(path);
  if (it == repo.files.end()) {
    ServerResponse r = Refuse(404, "Entry not found");
    r.headers.Set("X-Error-Code", "EntryNotFound");
    if (!repo.head_oid.empty()) r.headers.Set("X-Repo-Commit", repo.head_oid);
    return r;
  }
  const FakeFile& f = it->second;
  ServerResponse r;
  r.headers.Set("X-Repo-Commit", repo.head_oid);
  if (f.lfs) {
    const std::string oid = Sha256Hex(f.content);
    r.status = 302;
    r.headers.Set("Location", Presign("GET", storage, "/lfs/" + oid));
    r.headers.Set("X-Linked-Etag", "\"" + oid + "\"");
    r.headers.Set("X-Linked-Size", std::to_string(f.content.size()));
    r.headers.Set("ETag", "\"" + Sha256Hex(path + oid).substr(0, 40) + "\"");
    return r;
  }
  r.status = 200;
  r.body = f.content;  // for HEAD only its length is sent
  r.headers.Set("Content-Type", "application/octet-stream");
  r.headers.Set("ETag", "\"" + Sha256Hex("blob " + f.content).substr(0, 40) + "\"");
  return r;
}

}  // namespace cf::hub::testing
