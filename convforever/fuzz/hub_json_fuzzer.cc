// The Hugging Face Hub's JSON answers (hub_json.h), the same bytes through every parser: whoami,
// preupload, commit, and the LFS batch answer for three objects (a small one, one of three
// 10-byte chunks' worth, and an 8 GiB one).
//
// Promises checked: errors are DATA_LOSS (FAILED_PRECONDITION only for a refused LFS object);
// an LFS answer gives one transfer per object; a multipart transfer has exactly
// ceil(size / chunk_size) part URLs, and one that uploads nothing has no parts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "convforever/hub/hub_client.h"
#include "convforever/hub/hub_json.h"
#include "convforever/fuzz/check.h"

namespace {

const std::vector<cf::hub::LfsObject>& Objects() {
  static const auto* const kObjects = new std::vector<cf::hub::LfsObject>{
      {"config.json", "/nonexistent/a",
       "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c", 4},
      {"shard-000.tar", "/nonexistent/b",
       "7d865e959b2466918c9863afca942d0fb89d7c9ac0c99bafc3749504ded97730", 25},
      {"model.safetensors", "/nonexistent/c",
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", int64_t{8} << 30},
  };
  return *kObjects;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view body(reinterpret_cast<const char*>(data), size);

  const auto who = cf::hub::ParseWhoAmI(body);
  CF_FUZZ_FAIL_IF(!who.ok() && !absl::IsDataLoss(who.status()));

  const auto files = cf::hub::ParsePreupload(body);
  CF_FUZZ_FAIL_IF(!files.ok() && !absl::IsDataLoss(files.status()));

  (void)cf::hub::ParseCommit(body);

  const auto& objects = Objects();
  const auto batch = cf::hub::ParseLfsBatch(body, objects);
  if (!batch.ok()) {
    if (!absl::IsDataLoss(batch.status()) && !absl::IsFailedPrecondition(batch.status())) {
      CF_FUZZ_FAIL("a bad LFS batch answer is DATA_LOSS or FAILED_PRECONDITION");
    }
    return 0;
  }
  CF_FUZZ_FAIL_IF(batch->size() != objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    const cf::hub::LfsTransfer& t = (*batch)[i];
    CF_FUZZ_FAIL_IF(t.chunk_size < 0);
    if (t.chunk_size == 0) {
      CF_FUZZ_FAIL_IF(!t.part_urls.empty());
      continue;
    }
    CF_FUZZ_FAIL_IF(!t.upload);
    const int64_t n = objects[i].size / t.chunk_size + (objects[i].size % t.chunk_size != 0);
    CF_FUZZ_FAIL_IF(static_cast<int64_t>(t.part_urls.size()) != n);
  }
  return 0;
}
