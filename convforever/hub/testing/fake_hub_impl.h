// FakeHub's internal state, shared by fake_hub.cc (routing, repos, preupload) and fake_hub_lfs.cc
// (LFS batch, storage, completion, verify, commit). Every Impl method runs under `mu`.
#ifndef CONVFOREVER_HUB_TESTING_FAKE_HUB_IMPL_H_
#define CONVFOREVER_HUB_TESTING_FAKE_HUB_IMPL_H_

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "convforever/hub/testing/fake_hub.h"
#include "nlohmann/json.hpp"

namespace cf::hub::testing {

using http::testing::ServerRequest;
using http::testing::ServerResponse;
using nlohmann::json;


struct FaultRule {
  Fault fault;
  int remaining;
  std::string path_contains;
};

struct PendingObject {
  int64_t size = 0;
  int64_t parts = 0;  // 0 = basic
  std::map<int64_t, std::string> part_bodies;
  std::map<int64_t, std::string> etags;
};

inline ServerResponse JsonResponse(int status, const json& body) {
  return ServerResponse::Json(status, body.dump());
}

inline std::string RepoKey(const std::string& type, const std::string& id) { return type + ":" + id; }


struct FakeHub::Impl {
  mutable std::mutex mu;
  std::map<std::string, FakeRepo> repos;  // RepoKey -> repo
  std::map<std::string, std::string> lfs;  // oid -> bytes
  std::map<std::string, PendingObject> pending;
  std::vector<FaultRule> faults;
  bool down = false;
  std::vector<std::string> violations;
  int64_t token_leaks = 0, faults_served = 0, basic_puts = 0, part_puts = 0, completions = 0,
          verifies = 0, commits = 0, unsigned_refusals = 0, storage_gets = 0;
  std::string signing_key;  // random per FakeHub: URLs from another instance do not verify
  absl::Duration url_lifetime;

  // "<url>?Expires=<unix s>&Signature=<hex HMAC-SHA256(key, METHOD \n path \n expires)>".
  // GET URLs also verify for HEAD.
  std::string Presign(const std::string& method, const std::string& base, const std::string& path) const;
  // Checks the query string of a presigned request; nullopt when valid, else the refusal.
  std::optional<ServerResponse> CheckSignature(const ServerRequest& req, const std::string& path);

  // A 4xx the client caused by breaking the protocol: recorded for the test to see.
  ServerResponse Bad(const std::string& message) {
    violations.push_back(message);
    return Refuse(400, message);
  }
  static ServerResponse Refuse(int status, const std::string& message) {
    ServerResponse r = JsonResponse(status, json{{"error", message}});
    r.headers.Set("X-Error-Code", status == 404 ? "RepoNotFound" : "BadRequest");
    r.headers.Set("X-Error-Message", message);
    return r;
  }
  std::optional<ServerResponse> TakeFault(const std::string& path);
  ServerResponse Whoami(const FakeHubOptions& o);
  ServerResponse CreateRepo(const FakeHubOptions& o, const std::string& endpoint,
                            const std::string& body);
  ServerResponse Preupload(const FakeHubOptions& o, FakeRepo& repo, const std::string& body);
  ServerResponse Commit(const std::string& endpoint, const std::string& id, FakeRepo& repo,
                        const std::string& body);
  ServerResponse Batch(const FakeHubOptions& o, const std::string& endpoint,
                       const std::string& storage, const ServerRequest& req);
  ServerResponse StoragePut(const FakeHubOptions& o, const std::string& path, const std::string& body);
  ServerResponse Complete(const std::string& oid, const std::string& body);
  ServerResponse Verify(const std::string& oid, const std::string& body);
  bool StoreIfValid(const std::string& oid, std::string bytes, std::string* error);
  ServerResponse Resolve(const std::string& storage, const FakeRepo& repo, const std::string& path);
  ServerResponse StorageGet(const std::string& oid, const ServerRequest& req);
};


}  // namespace cf::hub::testing

#endif  // CONVFOREVER_HUB_TESTING_FAKE_HUB_IMPL_H_
