// The Hugging Face Hub's JSON answers that HubClient acts on, parsed from the bytes (pure; the
// client and the hub_json fuzz target run the same code):
//   whoami-v2        {"name", "orgs": [{"name"}]}
//   preupload        {"files": [{"path", "uploadMode": "lfs"|"regular", "shouldIgnore"}]}
//   commit           {"commitUrl", "commitOid"}
//   LFS batch        {"objects": [{"oid", "size", "actions": {"upload": {"href", "header"},
//                    "verify": {"href"}}, "error": {...}}]} (git-lfs batch API; multipart when
//                    upload.header has chunk_size, its digit keys "1".."N" being the part URLs)
// Every body goes through CheckJsonLimits (base/json_limits.h) first. Errors are DATA_LOSS for an
// answer that is not the documented shape (the Hub or a proxy sent something else), and
// FAILED_PRECONDITION for an LFS object the Hub refuses; messages carry no repo name (the caller
// adds it) and at most a short excerpt of the body. Wrong-typed optional fields read as absent.
#ifndef CONVFOREVER_HUB_HUB_JSON_H_
#define CONVFOREVER_HUB_HUB_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "convforever/hub/hub_client.h"

namespace cf::hub {

absl::StatusOr<WhoAmI> ParseWhoAmI(absl::string_view body);

absl::StatusOr<std::vector<PreuploadResult>> ParsePreupload(absl::string_view body);

// The commit has happened once the Hub answers 2xx; the URL and oid are informative, so a body
// without them (or not JSON) gives empty fields rather than an error.
CommitInfo ParseCommit(absl::string_view body);

// What to do for one LFS object of a batch.
struct LfsTransfer {
  bool upload = false;         // false: the Hub already stores these bytes
  std::string href;            // basic: the PUT target; multipart: the completion POST target
  int64_t chunk_size = 0;      // > 0: multipart
  std::vector<std::string> part_urls;  // multipart: part 1..N, N = ceil(size / chunk_size)
  std::optional<std::string> verify_href;  // POST {oid, size} here after the upload
};

// One LfsTransfer per object of `objects`, in order, matched to the answer by oid. The part URLs
// must be exactly the keys 1..N for the object's size.
absl::StatusOr<std::vector<LfsTransfer>> ParseLfsBatch(absl::string_view body,
                                                      absl::Span<const LfsObject> objects);

}  // namespace cf::hub

#endif  // CONVFOREVER_HUB_HUB_JSON_H_
