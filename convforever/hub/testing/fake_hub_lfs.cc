// FakeHub: LFS batch, presigned storage PUTs, multipart completion, verify, commits, accessors.
#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convforever/hub/sha256.h"
#include "convforever/hub/testing/fake_hub.h"
#include "convforever/hub/testing/fake_hub_impl.h"

namespace cf::hub::testing {
namespace {

bool IsOid(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

bool FakeHub::Impl::StoreIfValid(const std::string& oid, std::string bytes, std::string* error) {
  const PendingObject& p = pending[oid];
  if (static_cast<int64_t>(bytes.size()) != p.size) {
    *error = absl::StrCat("object ", oid, " announced ", p.size, " bytes, got ", bytes.size());
    return false;
  }
  if (Sha256Hex(bytes) != oid) {
    *error = absl::StrCat("object ", oid, ": sha256 of the uploaded bytes is ", Sha256Hex(bytes));
    return false;
  }
  lfs[oid] = std::move(bytes);
  pending.erase(oid);
  return true;
}

ServerResponse FakeHub::Impl::Batch(const FakeHubOptions& o, const std::string& endpoint,
                                    const std::string& storage, const ServerRequest& req) {
  const std::string path = req.path.substr(0, req.path.find('?'));
  const bool dataset = absl::StartsWith(path, "/datasets/");
  std::string id = path.substr(dataset ? strlen("/datasets/") : 1);
  id = id.substr(0, id.size() - strlen(".git/info/lfs/objects/batch"));
  if (!repos.count(RepoKey(dataset ? "dataset" : "model", id))) {
    return Refuse(404, "Repository not found");
  }
  for (const char* h : {"Content-Type", "Accept"}) {
    if (!absl::StartsWith(req.headers.Get(h).value_or(""), "application/vnd.git-lfs+json")) {
      return Bad(absl::StrCat("LFS batch ", h, " is not application/vnd.git-lfs+json"));
    }
  }
  json j = json::parse(req.body, nullptr, false);
  if (!j.is_object() || j.value("operation", "") != "upload" || j.value("hash_algo", "") != "sha256" ||
      !j.contains("objects") || !j["objects"].is_array()) {
    return Bad("LFS batch body malformed: " + req.body.substr(0, 200));
  }
  const bool multipart_ok = j.contains("transfers") && j["transfers"].dump().find("\"multipart\"") !=
                                                           std::string::npos;
  json out = json::array();
  for (const json& obj : j["objects"]) {
    if (!obj.is_object() || !obj.contains("oid") || !obj["oid"].is_string() ||
        !IsOid(obj["oid"]) || !obj.contains("size") || !obj["size"].is_number_integer()) {
      return Bad("LFS batch object malformed: " + obj.dump());
    }
    const std::string oid = obj["oid"];
    const int64_t size = obj["size"];
    json entry = {{"oid", oid}, {"size", size}};
    if (lfs.count(oid)) {  // already stored: no actions
      out.push_back(entry);
      continue;
    }
    PendingObject& p = pending[oid];
    p = PendingObject();
    p.size = size;
    json actions;
    if (multipart_ok && size >= o.multipart_threshold) {
      p.parts = (size + o.chunk_size - 1) / o.chunk_size;
      json header = {{"chunk_size", std::to_string(o.chunk_size)}};
      for (int64_t n = 1; n <= p.parts; ++n) {
        header[std::to_string(n)] = Presign("PUT", storage, absl::StrCat("/storage/", oid, "/part/", n));
      }
      actions["upload"] = {{"href", Presign("POST", endpoint, "/lfs-complete/" + oid)},
                           {"header", header}};
    } else {
      actions["upload"] = {{"href", Presign("PUT", storage, "/storage/" + oid)}};
    }
    if (o.verify) actions["verify"] = {{"href", endpoint + "/lfs-verify/" + oid}};
    entry["actions"] = actions;
    out.push_back(entry);
  }
  ServerResponse r = JsonResponse(200, json{{"transfer", "basic"}, {"objects", out}});
  r.headers.Set("Content-Type", "application/vnd.git-lfs+json");
  return r;
}

ServerResponse FakeHub::Impl::StoragePut(const FakeHubOptions& o, const std::string& path,
                                         const std::string& body) {
  std::vector<std::string> parts = absl::StrSplit(path.substr(strlen("/storage/")), '/');
  const std::string oid = parts[0];
  auto it = pending.find(oid);
  if (it == pending.end()) return Bad("storage PUT for an object not announced: " + oid);
  PendingObject& p = it->second;
  if (parts.size() == 1) {
    if (p.parts != 0) return Bad("basic PUT for multipart object " + oid);
    ++basic_puts;
    std::string error;
    if (!StoreIfValid(oid, body, &error)) return Bad(error);
    return ServerResponse::Text(200, "");
  }
  int64_t n = 0;
  if (parts.size() != 3 || parts[1] != "part" || !absl::SimpleAtoi(parts[2], &n) || n < 1 ||
      n > p.parts) {
    return Bad("bad part URL " + path);
  }
  const int64_t want = n < p.parts ? o.chunk_size : p.size - o.chunk_size * (p.parts - 1);
  if (static_cast<int64_t>(body.size()) != want) {
    return Bad(absl::StrCat("part ", n, " of ", oid, " has ", body.size(), " bytes, expected ", want));
  }
  ++part_puts;
  const std::string etag = "\"" + Sha256Hex(body).substr(0, 32) + "\"";
  p.part_bodies[n] = body;
  p.etags[n] = etag;
  ServerResponse r = ServerResponse::Text(200, "");
  r.headers.Set("ETag", etag);
  return r;
}

ServerResponse FakeHub::Impl::Complete(const std::string& oid, const std::string& body) {
  auto it = pending.find(oid);
  if (it == pending.end() || it->second.parts == 0) {
    return Bad("completion for an object not in a multipart upload: " + oid);
  }
  PendingObject& p = it->second;
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || j.value("oid", "") != oid || !j.contains("parts") || !j["parts"].is_array()) {
    return Bad("completion body malformed: " + body.substr(0, 200));
  }
  if (static_cast<int64_t>(j["parts"].size()) != p.parts) {
    return Bad(absl::StrCat("completion lists ", j["parts"].size(), " parts of ", p.parts));
  }
  std::string bytes;
  for (int64_t i = 0; i < p.parts; ++i) {
    const json& part = j["parts"][i];
    if (!part.is_object() || part.value("partNumber", -1) != i + 1) {
      return Bad(absl::StrCat("completion part ", i, " is out of order: ", part.dump()));
    }
    if (!p.etags.count(i + 1) || part.value("etag", "") != p.etags[i + 1]) {
      return Bad(absl::StrCat("completion part ", i + 1, " ETag mismatch: ", part.dump()));
    }
    bytes += p.part_bodies[i + 1];
  }
  ++completions;
  std::string error;
  if (!StoreIfValid(oid, std::move(bytes), &error)) return Bad(error);
  return JsonResponse(200, json::object());
}

ServerResponse FakeHub::Impl::Verify(const std::string& oid, const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || j.value("oid", "") != oid || !j.contains("size")) {
    return Bad("verify body malformed: " + body.substr(0, 200));
  }
  auto it = lfs.find(oid);
  if (it == lfs.end() || static_cast<int64_t>(it->second.size()) != j["size"].get<int64_t>()) {
    return Bad("verify of an object not stored with that size: " + oid);
  }
  ++verifies;
  return JsonResponse(200, json{{"message", "Everything good"}});
}

ServerResponse FakeHub::Impl::Commit(const std::string& endpoint, const std::string& id,
                                     FakeRepo& repo, const std::string& body) {
  std::vector<std::string> lines = absl::StrSplit(body, '\n', absl::SkipEmpty());
  if (lines.empty()) return Bad("empty commit");
  json header = json::parse(lines[0], nullptr, false);
  if (!header.is_object() || header.value("key", "") != "header" || !header.contains("value") ||
      !header["value"].is_object() || header["value"].value("summary", "").empty()) {
    return Bad("commit line 1 is not a header with a summary: " + lines[0].substr(0, 200));
  }
  std::map<std::string, FakeFile> tree = repo.files;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string where = absl::StrCat("commit line ", i + 1, ": ");
    json line = json::parse(lines[i], nullptr, false);
    if (!line.is_object() || !line.contains("value") || !line["value"].is_object() ||
        !line["value"].contains("path") || !line["value"]["path"].is_string()) {
      return Bad(where + "malformed: " + lines[i].substr(0, 200));
    }
    const json& v = line["value"];
    const std::string path = v["path"];
    const std::string key = line.value("key", "");
    if (path.empty() || path[0] == '/' || absl::StrContains(path, "..")) {
      return Bad(where + "bad path " + path);
    }
    if (key == "file") {
      std::string content;
      if (v.value("encoding", "") != "base64" || !v.contains("content") || !v["content"].is_string() ||
          !absl::Base64Unescape(v["content"].get<std::string>(), &content)) {
        return Bad(where + "file " + path + " content is not valid base64");
      }
      tree[path] = FakeFile{std::move(content), false};
    } else if (key == "lfsFile") {
      const std::string oid = v.value("oid", "");
      auto it = lfs.find(oid);
      if (v.value("algo", "") != "sha256" || it == lfs.end()) {
        return Bad(where + "lfsFile " + path + " points to an object never uploaded: " + oid);
      }
      if (!v.contains("size") || v["size"].get<int64_t>() != static_cast<int64_t>(it->second.size())) {
        return Bad(where + "lfsFile " + path + " size does not match the stored object");
      }
      tree[path] = FakeFile{it->second, true};
    } else if (key == "deletedFile") {
      if (!tree.erase(path)) return Bad(where + "deletedFile " + path + " does not exist");
    } else {
      return Bad(where + "unknown key " + key);
    }
  }
  repo.files = std::move(tree);
  repo.commit_summaries.push_back(header["value"]["summary"]);
  ++commits;
  const std::string oid = Sha256Hex(repo.head_oid + body).substr(0, 40);
  repo.head_oid = oid;
  return JsonResponse(200, json{{"commitUrl", endpoint + "/" + id + "/commit/" + oid},
                                {"commitOid", oid}});
}

// --- accessors ---------------------------------------------------------------------------------

std::optional<FakeRepo> FakeHub::repo(const std::string& type, const std::string& id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->repos.find(RepoKey(type, id));
  if (it == impl_->repos.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> FakeHub::file(const std::string& type, const std::string& id,
                                         const std::string& path) const {
  auto r = repo(type, id);
  if (!r || !r->files.count(path)) return std::nullopt;
  return r->files.at(path).content;
}

#define CF_FAKE_HUB_COUNTER(name)                     \
  int64_t FakeHub::name() const {                     \
    std::lock_guard<std::mutex> lock(impl_->mu);      \
    return impl_->name;                               \
  }
CF_FAKE_HUB_COUNTER(token_leaks)
CF_FAKE_HUB_COUNTER(faults_served)
CF_FAKE_HUB_COUNTER(basic_puts)
CF_FAKE_HUB_COUNTER(part_puts)
CF_FAKE_HUB_COUNTER(completions)
CF_FAKE_HUB_COUNTER(verifies)
CF_FAKE_HUB_COUNTER(commits)
CF_FAKE_HUB_COUNTER(unsigned_refusals)
CF_FAKE_HUB_COUNTER(storage_gets)
#undef CF_FAKE_HUB_COUNTER

int64_t FakeHub::lfs_objects() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return static_cast<int64_t>(impl_->lfs.size());
}

std::vector<std::string> FakeHub::violations() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->violations;
}

}  // namespace cf::hub::testing
