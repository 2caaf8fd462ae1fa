// WebDataset shards: WdsSource::ReadShardBytes, which reads a shard held in memory (as every
// remote shard is after its download) with libarchive and groups its members into samples by key.
// The source is opened over a URL, which Open does not fetch, with the default limits.
// Checked on every input: each emitted sample has encoded image bytes no larger than
// wds_max_member_bytes, a label in [0, num_classes) and a key "<shard file name>:<key>"; the skip counters
// are positive; and tar headers claiming huge members cost no such allocation (-malloc_limit_mb).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <glog/logging.h>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "convforever/data/wds.h"
#include "convforever/fuzz/check.h"

namespace {


constexpr char kShard[] = "https://hub.example/shard-000000.tar";

const cf::data::WdsSource& Source() {
  static const cf::data::WdsSource* source = [] {
    FLAGS_minloglevel = google::GLOG_ERROR;  // one warning per rejected member is noise here
    cf::data::DatasetSpec spec{"wds", kShard};
    spec.num_classes = 10;
    auto s = cf::data::WdsSource::Open(spec);
    CF_FUZZ_CHECK(s.ok());
    return s->release();
  }();
  return *source;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const cf::data::WdsSource& source = Source();
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::map<std::string, int64_t> skipped;
  std::atomic<bool> cancel{false};
  const int64_t max_member = cf::data::DatasetSpec().wds_max_member_bytes;
  auto emit = [&](cf::data::FetchResult r) {
    CF_FUZZ_CHECK(r.record.ok());
    CF_FUZZ_CHECK(!r.record->encoded.empty() && static_cast<int64_t>(r.record->encoded.size()) <= max_member);
    CF_FUZZ_CHECK(r.record->label >= 0 && r.record->label < source.num_classes());
    CF_FUZZ_CHECK(absl::StartsWith(r.record->key, "shard-000000.tar:"));  // the URL's file name
    return true;
  };
  CF_FUZZ_CHECK(source.ReadShardBytes(bytes, kShard, emit, &skipped, cancel));
  for (const auto& [reason, count] : skipped) CF_FUZZ_CHECK(count > 0);
  return 0;
}
