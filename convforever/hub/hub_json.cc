#include "convforever/hub/hub_json.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "convforever/base/json_limits.h"
#include "convforever/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace cf::hub {
namespace {

using nlohmann::json;

std::string Excerpt(absl::string_view s, size_t limit = 200) {
  s = s.substr(0, s.find('\n'));
  return std::string(s.substr(0, limit));
}

// Parsed body, or DATA_LOSS naming `what` when it is past the limits or not JSON.
absl::StatusOr<json> ParseBody(absl::string_view body, absl::string_view what) {
  if (absl::Status s = CheckJsonLimits(body); !s.ok()) {
    return absl::DataLossError(absl::StrCat(what, ": ", s.message()));
  }
  json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::DataLossError(absl::StrCat(what, " is not JSON: ", Excerpt(body)));
  }
  return doc;
}

// The string at `key` of an object, or nullopt when absent or of another type. (json::value()
// throws for a present key of the wrong type, and an answer must never throw.)
std::optional<std::string> StringField(const json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<int64_t> JsonInt(const json& v) {
  if (v.is_number_integer() && !v.is_number_unsigned()) return v.get<int64_t>();
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(u);
    return std::nullopt;
  }
  int64_t n;
  if (v.is_string() && absl::SimpleAtoi(v.get<std::string>(), &n)) return n;
  return std::nullopt;
}

absl::Status ParseUpload(const json& upload, const LfsObject& object, LfsTransfer* t) {
  const std::optional<std::string> href = StringField(upload, "href");
  if (!href) return absl::DataLossError("LFS upload action has no href");
  t->upload = true;
  t->href = *href;
  auto header = upload.find("header");
  if (header == upload.end() || !header->is_object() || !header->contains("chunk_size")) {
    return absl::OkStatus();  // basic transfer
  }
  const json& chunk_json = (*header)["chunk_size"];
  const std::optional<int64_t> chunk = JsonInt(chunk_json);
  if (!chunk || *chunk <= 0) {
    return absl::DataLossError(absl::StrCat("bad multipart chunk_size ", chunk_json.dump().substr(0, 100)));
  }
  // ceil(size / chunk) without the overflow of size + chunk - 1.
  const int64_t want_parts = object.size / *chunk + (object.size % *chunk != 0 ? 1 : 0);
  std::vector<std::pair<int64_t, std::string>> parts;
  for (const auto& [key, value] : header->items()) {
    int64_t n;
    if (!key.empty() && std::all_of(key.begin(), key.end(), absl::ascii_isdigit) &&
        absl::SimpleAtoi(key, &n) && value.is_string()) {
      parts.emplace_back(n, value.get<std::string>());
    }
  }
  std::sort(parts.begin(), parts.end());
  if (static_cast<int64_t>(parts.size()) != want_parts) {
    return absl::DataLossError(absl::StrCat("multipart answer has ", parts.size(), " part URLs for ",
                                            object.size, " bytes in chunks of ", *chunk,
                                            " (expected ", want_parts, ")"));
  }
  // Exactly 1..N: "01" and "1" would otherwise pass the count as two URLs for part 1.
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].first != static_cast<int64_t>(i) + 1) {
      return absl::DataLossError(absl::StrCat("multipart answer's part numbers are not 1..",
                                              want_parts, " (part ", i + 1, " is ",
                                              parts[i].first, ")"));
    }
    t->part_urls.push_back(std::move(parts[i].second));
  }
  t->chunk_size = *chunk;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<WhoAmI> ParseWhoAmI(absl::string_view body) {
  ASSIGN_OR_RETURN(json doc, ParseBody(body, "whoami answer"));
  const std::optional<std::string> name = StringField(doc, "name");
  if (!name) return absl::DataLossError(absl::StrCat("unexpected answer: ", Excerpt(body)));
  WhoAmI who;
  who.name = *name;
  auto orgs = doc.find("orgs");
  if (orgs != doc.end() && orgs->is_array()) {
    for (const json& org : *orgs) {
      if (auto org_name = StringField(org, "name")) who.orgs.push_back(*org_name);
    }
  }
  auto auth = doc.find("auth");
  if (auth != doc.end() && auth->is_object()) {
    auto token = auth->find("accessToken");
    if (token != auth->end() && token->is_object()) {
      if (auto role = StringField(*token, "role")) who.token_role = *role;
    }
  }
  return who;
}

absl::StatusOr<std::vector<PreuploadResult>> ParsePreupload(absl::string_view body) {
  ASSIGN_OR_RETURN(json doc, ParseBody(body, "preupload answer"));
  auto files = doc.is_object() ? doc.find("files") : doc.end();
  if (!doc.is_object() || files == doc.end() || !files->is_array()) {
    return absl::DataLossError(absl::StrCat("preupload answer has no files: ", Excerpt(body)));
  }
  std::vector<PreuploadResult> results;
  for (const json& f : *files) {
    const std::optional<std::string> path = StringField(f, "path");
    if (!path) {
      return absl::DataLossError(absl::StrCat("bad preupload entry ", f.dump().substr(0, 200)));
    }
    PreuploadResult r;
    r.path_in_repo = *path;
    r.lfs = StringField(f, "uploadMode") == "lfs";
    auto ignore = f.find("shouldIgnore");
    r.should_ignore = ignore != f.end() && ignore->is_boolean() && ignore->get<bool>();
    results.push_back(std::move(r));
  }
  return results;
}

CommitInfo ParseCommit(absl::string_view body) {
  CommitInfo info;
  absl::StatusOr<json> doc = ParseBody(body, "commit answer");
  if (!doc.ok()) return info;
  info.commit_url = StringField(*doc, "commitUrl").value_or("");
  info.commit_oid = StringField(*doc, "commitOid").value_or("");
  return info;
}

absl::StatusOr<std::vector<LfsTransfer>> ParseLfsBatch(absl::string_view body,
                                                      absl::Span<const LfsObject> objects) {
  ASSIGN_OR_RETURN(json doc, ParseBody(body, "LFS batch answer"));
  auto answers = doc.is_object() ? doc.find("objects") : doc.end();
  if (!doc.is_object() || answers == doc.end() || !answers->is_array()) {
    return absl::DataLossError(absl::StrCat("LFS batch answer has no objects: ", Excerpt(body)));
  }
  std::vector<LfsTransfer> transfers;
  transfers.reserve(objects.size());
  for (const LfsObject& object : objects) {
    const json* found = nullptr;
    for (const json& o : *answers) {
      if (StringField(o, "oid") == object.oid) {
        found = &o;
        break;
      }
    }
    if (found == nullptr) {
      return absl::DataLossError(absl::StrCat("LFS batch answer omits ", object.path_in_repo,
                                              " (oid ", object.oid, ")"));
    }
    if (found->contains("error")) {
      return absl::FailedPreconditionError(absl::StrCat("LFS batch refused ", object.path_in_repo,
                                                        ": ", (*found)["error"].dump().substr(0, 300)));
    }
    LfsTransfer t;
    auto actions = found->find("actions");
    // No actions (or null): the Hub already stores these bytes (e.g. an unchanged checkpoint).
    if (actions != found->end() && !actions->is_null()) {
      const std::string where = absl::StrCat(object.path_in_repo, ": ");
      if (!actions->is_object()) {
        return absl::DataLossError(absl::StrCat(where, "LFS actions is not an object"));
      }
      if (auto upload = actions->find("upload"); upload != actions->end()) {
        absl::Status s = ParseUpload(*upload, object, &t);
        if (!s.ok()) return absl::Status(s.code(), absl::StrCat(where, s.message()));
      }
      if (auto verify = actions->find("verify"); verify != actions->end()) {
        t.verify_href = StringField(*verify, "href");
        if (!t.verify_href) return absl::DataLossError(absl::StrCat(where, "LFS verify action has no href"));
      }
    }
    transfers.push_back(std::move(t));
  }
  return transfers;
}

}  // namespace cf::hub
