#include "convforever/hub/hub_client.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "convforever/base/status_macros.h"
#include "convforever/hub/hub_json.h"
#include "nlohmann/json.hpp"

namespace cf::hub {
namespace {

using nlohmann::json;

constexpr size_t kPreuploadBatch = 256;  // huggingface_hub's chunk size for preupload calls

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

// The commit is the one call that changes the repo, so it is retried only when the server cannot
// have applied it:
//  * a transport failure: libcurl reports refused/reset/dropped connections and timeouts. A
//    connection dropped after the server received the body is the one ambiguous case; it is
//    accepted because our commits are content-addressed and complete (every file of the snapshot,
//    LFS files by sha256): replaying an applied commit yields the same tree, at worst an extra
//    empty commit, never a wrong one;
//  * 429 or 503 that carry an explicit retry hint (RateLimit / Retry-After): the server refused
//    the request at its front door and says when to come back.
// A 500/502/504 or a hint-less 503 may come after the commit was applied (or half-applied), so it
// is returned to the caller (the uploader retries at its next snapshot, with fresh state).
http::RetryPolicy CommitRetryPolicy(const http::RetryPolicy& base) {
  http::RetryPolicy p = base;
  p.retry_statuses.clear();
  p.retry_all_5xx = false;
  p.retry_transport_errors = true;
  p.retry_if = [](const http::Response& r) {
    return (r.status == 429 || r.status == 503) &&
           http::RetryHintFromHeaders(r.headers, absl::Now()).has_value();
  };
  return p;
}

std::string FirstLine(absl::string_view s, size_t limit) {
  s = s.substr(0, s.find('\n'));
  return std::string(s.substr(0, limit));
}

}  // namespace

absl::StatusOr<RepoType> ParseRepoType(absl::string_view name) {
  if (name == "model" || name == "models") return RepoType::kModel;
  if (name == "dataset" || name == "datasets") return RepoType::kDataset;
  return absl::InvalidArgumentError(
      absl::StrCat("repo type '", name, "' is not supported: use model or dataset"));
}

const char* RepoTypeName(RepoType type) {
  return type == RepoType::kDataset ? "dataset" : "model";
}

std::string RepoId::Describe() const { return absl::StrCat(RepoTypeName(type), " repo ", id); }

absl::Status ValidateRepoId(absl::string_view id) {
  const size_t slash = id.find('/');
  const bool shape_ok = slash != absl::string_view::npos && slash > 0 && slash + 1 < id.size() &&
                        id.find('/', slash + 1) == absl::string_view::npos;
  bool chars_ok = true;
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.' && c != '/') chars_ok = false;
  }
  if (!shape_ok || !chars_ok || absl::StrContains(id, "..")) {
    return absl::InvalidArgumentError(
        absl::StrCat("repo id '", id, "' is not of the form ORG/NAME ([A-Za-z0-9._-])"));
  }
  return absl::OkStatus();
}

HubClientOptions::HubClientOptions() {
  // huggingface_hub's http_backoff: 5 tries, waits 1, 2, 4, 8, 8 s; 408/429/5xx; no jitter.
  retry.max_attempts = 5;
  retry.base_delay = absl::Seconds(1);
  retry.max_delay = absl::Seconds(8);
  retry.jitter = 0;
  retry.retry_statuses = {408, 429};
  retry.retry_all_5xx = true;
  retry.retry_transport_errors = true;
  retry.max_hint = absl::Minutes(6);  // rate-limit windows are 5 minutes
}

HubClientOptions HubClientOptions::FromEnvironment() {
  HubClientOptions o;
  const std::string endpoint = Env("HF_ENDPOINT");
  if (!endpoint.empty()) o.endpoint = std::string(absl::StripSuffix(endpoint, "/"));
  o.token = ReadToken();
  return o;
}

std::string ReadToken() {
  std::string token(absl::StripAsciiWhitespace(Env("HF_TOKEN")));
  if (!token.empty()) return token;
  if (!Env("HF_TOKEN_PATH").empty()) return ReadTrimmed(Env("HF_TOKEN_PATH"));
  std::string home = Env("HF_HOME");
  if (home.empty() && !Env("XDG_CACHE_HOME").empty()) home = Env("XDG_CACHE_HOME") + "/huggingface";
  if (home.empty() && !Env("HOME").empty()) home = Env("HOME") + "/.cache/huggingface";
  return home.empty() ? "" : ReadTrimmed(home + "/token");
}

CommitOperation CommitOperation::Regular(std::string path, std::string content) {
  CommitOperation op;
  op.kind = Kind::kRegular;
  op.path_in_repo = std::move(path);
  op.content = std::move(content);
  return op;
}
CommitOperation CommitOperation::Lfs(std::string path, std::string oid, int64_t size) {
  CommitOperation op;
  op.kind = Kind::kLfs;
  op.path_in_repo = std::move(path);
  op.oid = std::move(oid);
  op.size = size;
  return op;
}
CommitOperation CommitOperation::Delete(std::string path) {
  CommitOperation op;
  op.kind = Kind::kDelete;
  op.path_in_repo = std::move(path);
  return op;
}

std::string CommitPayload(const std::string& summary, const std::string& description,
                          const std::vector<CommitOperation>& operations) {
  std::string out =
      json{{"key", "header"}, {"value", {{"summary", summary}, {"description", description}}}}
          .dump();
  out.push_back('\n');
  for (const CommitOperation& op : operations) {
    json line;
    switch (op.kind) {
      case CommitOperation::Kind::kRegular:
        line = {{"key", "file"},
                {"value",
                 {{"content", absl::Base64Escape(op.content)},
                  {"path", op.path_in_repo},
                  {"encoding", "base64"}}}};
        break;
      case CommitOperation::Kind::kLfs:
        line = {{"key", "lfsFile"},
                {"value",
                 {{"path", op.path_in_repo}, {"algo", "sha256"}, {"oid", op.oid}, {"size", op.size}}}};
        break;
      case CommitOperation::Kind::kDelete:
        line = {{"key", "deletedFile"}, {"value", {{"path", op.path_in_repo}}}};
        break;
    }
    out += line.dump();
    out.push_back('\n');
  }
  return out;
}

HubClient::HubClient(HubClientOptions options) : options_(std::move(options)) {}

std::string HubClient::Scrub(std::string message) const {
  if (options_.token.size() >= 4) absl::StrReplaceAll({{options_.token, "<token>"}}, &message);
  return message;
}

namespace {

// "scheme://host:port" in lower case with the scheme's default port made explicit, or "" when
// the URL has no scheme or carries userinfo (never treated as our origin).
std::string Origin(absl::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) return "";
  const std::string scheme = absl::AsciiStrToLower(url.substr(0, scheme_end));
  absl::string_view authority = url.substr(scheme_end + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (authority.empty() || absl::StrContains(authority, "@")) return "";
  std::string origin = absl::StrCat(scheme, "://", absl::AsciiStrToLower(authority));
  const bool has_port = absl::StartsWith(authority, "[")  // IPv6 literal: [::1]:8080
                            ? absl::StrContains(authority, "]:")
                            : absl::StrContains(authority, ":");
  if (!has_port) absl::StrAppend(&origin, scheme == "https" ? ":443" : ":80");
  return origin;
}

}  // namespace

bool HubClient::IsEndpointUrl(const std::string& url) const {
  const std::string origin = Origin(url);
  return !origin.empty() && origin == Origin(options_.endpoint);
}

http::Request HubClient::ApiRequest(const std::string& method, const std::string& url) const {
  http::Request r;
  r.method = method;
  r.url = url;
  r.timeout = options_.api_timeout;
  r.headers.Set("User-Agent", "convforever-hub/1.0");
  return r;
}

std::string HubClient::ApiUrl(const RepoId& repo, const std::string& action) const {
  // A revision like "refs/pr/1" is one path segment: its slashes are escaped, as huggingface_hub
  // does with quote(revision, safe="").
  return absl::StrCat(options_.endpoint, "/api/", RepoTypeName(repo.type), "s/", repo.id, "/",
                      action, "/", absl::StrReplaceAll(options_.revision, {{"/", "%2F"}}));
}

std::string HubClient::LfsBatchUrl(const RepoId& repo) const {
  return absl::StrCat(options_.endpoint, repo.type == RepoType::kDataset ? "/datasets/" : "/",
                      repo.id, ".git/info/lfs/objects/batch");
}

absl::StatusOr<http::Response> HubClient::Send(http::Request request,
                                               const http::RetryPolicy& policy, Auth auth) {
  // The one place the token is attached: to the Hub's API on our own origin. Storage URLs are
  // presigned (the query string is the credential) and get no Authorization header at all, not
  // even one a batch answer's action headers might have put there.
  request.headers.Remove("Authorization");
  if (auth == Auth::kHubApi && !options_.token.empty() && IsEndpointUrl(request.url)) {
    request.headers.Set("Authorization", "Bearer " + options_.token);
  }
  http::Clock* clock = options_.clock != nullptr ? options_.clock : http::Clock::Real();
  absl::BitGen rng;
  const int max_attempts = std::max(1, policy.max_attempts);
  for (int attempt = 1;; ++attempt) {
    if (cancelled()) return absl::CancelledError(absl::StrCat(request.Describe(), ": cancelled"));
    if (request.body_stream != nullptr && request.body_stream->rewind &&
        !request.body_stream->rewind()) {
      return absl::DataLossError(absl::StrCat(request.Describe(), ": cannot rewind the body"));
    }
    requests_.fetch_add(1);
    absl::StatusOr<http::Response> outcome = http::Fetch(request);
    if (outcome.ok()) outcome->attempts = attempt;
    if (cancelled()) return absl::CancelledError(absl::StrCat(request.Describe(), ": cancelled"));
    if (attempt >= max_attempts || !http::ShouldRetry(policy, outcome)) {
      if (outcome.ok()) return outcome;
      return absl::Status(outcome.status().code(),
                          Scrub(absl::StrCat(outcome.status().message(), " (", attempt,
                                             attempt == 1 ? " attempt)" : " attempts)")));
    }
    absl::Duration wait = http::RetryDelay(policy, attempt - 1, outcome, clock->Now(), rng);
    // huggingface_hub sleeps the RateLimit reset plus one second, so the window has turned over.
    if (outcome.ok() && outcome->status == 429 && outcome->headers.Has("RateLimit")) {
      wait += absl::Seconds(1);
    }
    retries_.fetch_add(1);
    clock->SleepFor(wait);
  }
}

absl::Status HubClient::ToError(const http::Request& request, const http::Response& response,
                                const RepoId* repo) const {
  std::string detail = response.headers.Get("X-Error-Message").value_or("");
  if (detail.empty()) detail = FirstLine(response.body, 300);
  const std::string what = repo != nullptr ? repo->Describe() : http::RedactUrl(request.url);
  const std::string where = absl::StrCat(request.Describe(), ": HTTP ", response.status);
  absl::Status status;
  switch (response.status) {
    case 401:
      status = absl::UnauthenticatedError(absl::StrCat(
          "not authenticated for ", what, " (", where, "): set HF_TOKEN or log in so that ",
          "$HF_HOME/token holds a valid token: ", detail));
      break;
    case 403:
      status = absl::PermissionDeniedError(absl::StrCat(
          "no permission on ", what, " (", where, "): the token needs write access to it: ",
          detail));
      break;
    case 404:
      status = absl::NotFoundError(absl::StrCat(
          what, " not found (", where, "): check the name and the repo type, and that the ",
          "token can see it: ", detail));
      break;
    default:
      status = http::HttpStatusToError(request, response);
      if (repo != nullptr) {
        status = absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
      }
  }
  return absl::Status(status.code(), Scrub(std::string(status.message())));
}

absl::StatusOr<http::Response> HubClient::SendOk(http::Request request,
                                                 const http::RetryPolicy& policy,
                                                 const RepoId* repo, Auth auth) {
  ASSIGN_OR_RETURN(http::Response response, Send(request, policy, auth));
  if (!response.ok()) return ToError(request, response, repo);
  return response;
}

absl::StatusOr<WhoAmI> HubClient::Whoami() {
  http::Request req = ApiRequest("GET", options_.endpoint + "/api/whoami-v2");
  ASSIGN_OR_RETURN(http::Response resp, SendOk(req, options_.retry, nullptr));
  absl::StatusOr<WhoAmI> who = ParseWhoAmI(resp.body);
  if (!who.ok()) {
    return absl::Status(who.status().code(),
                        absl::StrCat(req.Describe(), ": ", who.status().message()));
  }
  return who;
}

absl::Status HubClient::CreateRepo(const RepoId& repo, bool private_repo) {
  RETURN_IF_ERROR(ValidateRepoId(repo.id));
  const size_t slash = repo.id.find('/');
  json payload = {{"name", repo.id.substr(slash + 1)},
                  {"organization", repo.id.substr(0, slash)},
                  {"type", RepoTypeName(repo.type)},
                  {"private", private_repo}};
  http::Request req = ApiRequest("POST", options_.endpoint + "/api/repos/create");
  req.headers.Set("Content-Type", "application/json");
  req.body = payload.dump();
  http::RetryPolicy policy = options_.retry;
  policy.retry_statuses.erase(409);  // 409 is the answer "exists", not a transient conflict
  ASSIGN_OR_RETURN(http::Response resp, Send(req, policy, Auth::kHubApi));
  if (resp.status == 409 || resp.ok()) return absl::OkStatus();
  return ToError(req, resp, &repo);
}

absl::StatusOr<std::vector<PreuploadResult>> HubClient::Preupload(
    const RepoId& repo, const std::vector<PreuploadFile>& files) {
  std::vector<PreuploadResult> results;
  for (size_t begin = 0; begin < files.size(); begin += kPreuploadBatch) {
    const size_t end = std::min(files.size(), begin + kPreuploadBatch);
    json list = json::array();
    for (size_t i = begin; i < end; ++i) {
      list.push_back({{"path", files[i].path_in_repo},
                      {"sample", absl::Base64Escape(files[i].sample)},
                      {"size", files[i].size}});
    }
    http::Request req = ApiRequest("POST", ApiUrl(repo, "preupload"));
    req.headers.Set("Content-Type", "application/json");
    req.body = json{{"files", list}}.dump();
    ASSIGN_OR_RETURN(http::Response resp, SendOk(req, options_.retry, &repo));
    absl::StatusOr<std::vector<PreuploadResult>> batch = ParsePreupload(resp.body);
    if (!batch.ok()) {
      return absl::Status(batch.status().code(),
                          absl::StrCat(repo.Describe(), ": ", batch.status().message()));
    }
    for (PreuploadResult& r : *batch) results.push_back(std::move(r));
  }
  return results;
}

absl::StatusOr<CommitInfo> HubClient::Commit(const RepoId& repo, const std::string& summary,
                                             const std::string& description,
                                             const std::vector<CommitOperation>& operations) {
  http::Request req = ApiRequest("POST", ApiUrl(repo, "commit"));
  req.headers.Set("Content-Type", "application/x-ndjson");
  req.body = CommitPayload(summary, description, operations);
  ASSIGN_OR_RETURN(http::Response resp, SendOk(req, CommitRetryPolicy(options_.retry), &repo));
  return ParseCommit(resp.body);
}

}  // namespace cf::hub
