#include "convforever/hub/testing/fake_hub.h"

#include <algorithm>
#include <cstring>

#include "convforever/hub/testing/fake_hub_impl.h"

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convforever/hub/sha256.h"
#include "nlohmann/json.hpp"

namespace cf::hub::testing {

using http::testing::ServerRequest;
using http::testing::ServerResponse;
using nlohmann::json;

std::optional<ServerResponse> FakeHub::Impl::TakeFault(const std::string& path) {
  if (down) {
    ++faults_served;
    return Refuse(503, "service unavailable (down)");
  }
  for (FaultRule& rule : faults) {
    if (rule.remaining <= 0 || !absl::StrContains(path, rule.path_contains)) continue;
    --rule.remaining;
    ++faults_served;
    ServerResponse r;
    switch (rule.fault) {
      case Fault::k429:
        r = Refuse(429, "rate limited");
        r.headers.Set("RateLimit", "\"api\";r=0;t=2");
        r.headers.Set("RateLimit-Policy", "\"fixed window\";\"api\";q=500;w=300");
        return r;
      case Fault::k503:
        return Refuse(503, "service unavailable");
      case Fault::k503WithRetryAfter:
        r = Refuse(503, "service unavailable");
        r.headers.Set("Retry-After", "3");
        return r;
      case Fault::k500:
        return Refuse(500, "internal error");
      case Fault::k401:
        return Refuse(401, "Invalid credentials in Authorization header");
      case Fault::kDrop:
        r.drop_connection = true;
        return r;
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<FakeHub>> FakeHub::Start(FakeHubOptions options) {
  std::unique_ptr<FakeHub> hub(new FakeHub());
  hub->options_ = std::move(options);
  hub->impl_ = std::make_unique<Impl>();
  absl::BitGen rng;
  for (int i = 0; i < 32; ++i) hub->impl_->signing_key.push_back(static_cast<char>(absl::Uniform<uint8_t>(rng)));
  hub->impl_->url_lifetime = hub->options_.url_lifetime;
  auto server = http::testing::TestServer::Start();
  if (!server.ok()) return server.status();
  hub->server_ = std::move(server).value();
  auto storage = http::testing::TestServer::Start();
  if (!storage.ok()) return storage.status();
  hub->storage_ = std::move(storage).value();
  FakeHub* raw = hub.get();
  hub->server_->Handle("*", "/", [raw](const ServerRequest& r) { return raw->Dispatch(r); });
  hub->storage_->Handle("*", "/", [raw](const ServerRequest& r) { return raw->DispatchStorage(r); });
  return hub;
}

FakeHub::~FakeHub() {
  SetPaused(false);
  if (server_ != nullptr) server_->Stop();
  if (storage_ != nullptr) storage_->Stop();
}

void FakeHub::WaitWhilePaused() {
  std::unique_lock<std::mutex> lock(pause_mu_);
  ++waiting_;
  pause_cv_.wait(lock, [this] { return !paused_; });
  --waiting_;
}

void FakeHub::SetPaused(bool paused) {
  {
    std::lock_guard<std::mutex> lock(pause_mu_);
    paused_ = paused;
  }
  pause_cv_.notify_all();
}

int64_t FakeHub::requests_waiting() const {
  std::lock_guard<std::mutex> lock(pause_mu_);
  return waiting_;
}

std::string FakeHub::endpoint() const { return server_->base_url(); }

std::string FakeHub::storage_url() const {
  return absl::StrCat("http://", options_.storage_host, ":", storage_->port());
}

void FakeHub::InjectFault(Fault fault, int times, const std::string& path_contains) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->faults.push_back({fault, times, path_contains});
}

void FakeHub::ClearFaults() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->faults.clear();
}

void FakeHub::SetDown(bool down) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->down = down;
}

ServerResponse FakeHub::Dispatch(const ServerRequest& req) {
  WaitWhilePaused();
  const std::string path = req.path.substr(0, req.path.find('?'));
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (auto fault = impl_->TakeFault(path)) return *fault;
  const std::optional<std::string> auth = req.headers.Get("Authorization");
  if (req.method == "POST" && absl::StartsWith(path, "/lfs-complete/")) {
    // Presigned like storage (the Hub's completion URL carries its own signature): the client
    // needs no token here and huggingface_hub sends none; one sent anyway is counted.
    if (auth.has_value()) ++impl_->token_leaks;
    if (auto refusal = impl_->CheckSignature(req, path)) return *refusal;
    return impl_->Complete(path.substr(strlen("/lfs-complete/")), req.body);
  }
  // GET|HEAD /{datasets/}ORG/NAME/resolve/REV/PATH: public repos need no token.
  std::vector<std::string> parts = absl::StrSplit(path, '/');
  const bool dataset = parts.size() > 1 && parts[1] == "datasets";
  const size_t at = dataset ? 2 : 1;
  if ((req.method == "GET" || req.method == "HEAD") && parts.size() > at + 4 &&
      parts[at + 2] == "resolve") {
    if (auth.has_value() && *auth != "Bearer " + options_.token) {
      return Impl::Refuse(401, "Invalid credentials in Authorization header");
    }
    auto it = impl_->repos.find(RepoKey(dataset ? "dataset" : "model",
                                        parts[at] + "/" + parts[at + 1]));
    if (it == impl_->repos.end() || (it->second.private_repo && !auth.has_value())) {
      return Impl::Refuse(404, "Repository not found");
    }
    if (parts[at + 3] != "main" && parts[at + 3] != it->second.head_oid) {
      return Impl::Refuse(404, "Revision not found: " + parts[at + 3]);
    }
    std::vector<std::string> rest(parts.begin() + at + 4, parts.end());
    return impl_->Resolve(storage_url(), it->second, absl::StrJoin(rest, "/"));
  }
  if (auth.value_or("") != "Bearer " + options_.token) {
    return Impl::Refuse(401, "Invalid credentials in Authorization header");
  }
  if (req.method == "GET" && path == "/api/whoami-v2") return impl_->Whoami(options_);
  if (req.method == "POST" && path == "/api/repos/create") {
    return impl_->CreateRepo(options_, endpoint(), req.body);
  }
  if (req.method == "POST" && absl::StartsWith(path, "/lfs-complete/")) {
    return impl_->Complete(path.substr(strlen("/lfs-complete/")), req.body);
  }
  if (req.method == "POST" && absl::StartsWith(path, "/lfs-verify/")) {
    return impl_->Verify(path.substr(strlen("/lfs-verify/")), req.body);
  }
  if (req.method == "POST" && absl::EndsWith(path, ".git/info/lfs/objects/batch")) {
    return impl_->Batch(options_, endpoint(), storage_url(), req);
  }
  // /api/{models,datasets}/ORG/NAME/{preupload,commit}/REV
  if (req.method == "POST" && parts.size() == 7 && parts[1] == "api" &&
      (parts[2] == "models" || parts[2] == "datasets")) {
    const std::string type = parts[2] == "models" ? "model" : "dataset";
    const std::string id = parts[3] + "/" + parts[4];
    auto it = impl_->repos.find(RepoKey(type, id));
    if (it == impl_->repos.end()) return Impl::Refuse(404, "Repository not found");
    if (parts[6] != "main") return Impl::Refuse(404, "Revision not found: " + parts[6]);
    if (parts[5] == "preupload") return impl_->Preupload(options_, it->second, req.body);
    if (parts[5] == "commit") return impl_->Commit(endpoint(), id, it->second, req.body);
  }
  return Impl::Refuse(404, "no such endpoint: " + req.method + " " + path);
}

ServerResponse FakeHub::Impl::Whoami(const FakeHubOptions& o) {
  json orgs = json::array();
  for (const std::string& org : o.orgs) orgs.push_back({{"name", org}});
  return JsonResponse(200, json{{"type", "user"},
                                {"name", o.user},
                                {"orgs", orgs},
                                {"auth", {{"type", "access_token"},
                                          {"accessToken", {{"displayName", "fake"}, {"role", o.token_role}}}}}});
}

ServerResponse FakeHub::Impl::CreateRepo(const FakeHubOptions& o, const std::string& endpoint,
                                         const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) {
    return Bad("repos/create without a name: " + body);
  }
  const std::string type = j.value("type", std::string("model"));
  if (type != "model" && type != "dataset") return Bad("repos/create with type " + type);
  std::string org = o.user;
  if (j.contains("organization") && j["organization"].is_string()) org = j["organization"];
  if (org != o.user && std::find(o.orgs.begin(), o.orgs.end(), org) == o.orgs.end()) {
    return Refuse(403, "You don't have the rights to create a repo under the namespace " + org);
  }
  const std::string id = org + "/" + j["name"].get<std::string>();
  const std::string key = RepoKey(type, id);
  const std::string url = endpoint + (type == "dataset" ? "/datasets/" : "/") + id;
  if (repos.count(key)) {
    // huggingface.co names the existing repo in its 409 body; huggingface_hub's
    // create_repo(exist_ok=True) reads that "url".
    ServerResponse r = Refuse(409, "You already created this " + type + " repo");
    r.body = json{{"error", "You already created this " + type + " repo"}, {"url", url}}.dump();
    return r;
  }
  FakeRepo& repo = repos[key];
  repo.type = type;
  // huggingface_hub 2.x sends "visibility" ("private" / "public"); older clients and HubClient
  // send "private": both are accepted, as by huggingface.co.
  repo.private_repo = j.value("private", false) || j.value("visibility", "") == "private";
  // An absolute URL, as huggingface.co answers (huggingface_hub parses it into a RepoUrl).
  return JsonResponse(200, json{{"url", url}, {"name", id}});
}

ServerResponse FakeHub::Impl::Preupload(const FakeHubOptions& o, FakeRepo& repo,
                                        const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("files") || !j["files"].is_array()) {
    return Bad("preupload without files: " + body.substr(0, 200));
  }
  json out = json::array();
  for (const json& f : j["files"]) {
    std::string sample;
    if (!f.is_object() || !f.contains("path") || !f.contains("size") || !f.contains("sample") ||
        !f["sample"].is_string() || !absl::Base64Unescape(f["sample"].get<std::string>(), &sample)) {
      return Bad("preupload entry malformed: " + f.dump().substr(0, 200));
    }
    const int64_t size = f["size"].get<int64_t>();
    if (sample.size() > 512 || (size >= 512 && sample.size() != 512) ||
        (size < 512 && static_cast<int64_t>(sample.size()) != size)) {
      return Bad("preupload sample of " + f["path"].get<std::string>() + " is " +
                 std::to_string(sample.size()) + " bytes for a file of " + std::to_string(size));
    }
    const bool binary = sample.find('\0') != std::string::npos;
    const bool lfs = binary || size > o.regular_max_size;
    out.push_back({{"path", f["path"]}, {"uploadMode", lfs ? "lfs" : "regular"},
                   {"shouldIgnore", false}});
  }
  return JsonResponse(200, json{{"files", out}, {"commitOid", "0000"}});
}

}  // namespace cf::hub::testing
