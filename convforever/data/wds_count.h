// The length of a WebDataset training set, which a stream does not know by itself: given by the
// caller, or counted once by reading the shards and cached.
//
// ResolveWdsTrainSamples returns the number of samples in the whole training set of `source`
// (all ranks, its spec's holdout part applied): DatasetSpec::wds_train_samples when it is > 0 ("given");
// otherwise the sum of WdsSource::CountSamples over every shard (tar headers and label members
// for local files, one full read for remote ones, several shards at once), cached in a small JSON file per
// shard list ("counted", then "from cache" on later runs). The cache key is a hash of the
// expanded shard list, each local shard's size and modification time, the holdout part and
// fraction and wds_max_member_bytes, so changing, adding or touching a shard, or changing the
// split, counts again; remote shards are keyed by URL only (a changed remote shard behind the
// same URL is not noticed: delete the cache file). Cache files live in
// $XDG_CACHE_HOME/convforever/wds_counts/ (else ~/.cache/convforever/wds_counts/), are written
// atomically (base/atomic_file.h) and hold no URL credentials (URLs are redacted; the key is a
// hash). An unreadable or unwritable cache only costs a recount (logged). A shard that cannot be
// read counts 0, as the stream skips it; such a count is logged and not cached; an error when
// no shard can be read. The result and how it
// was obtained are logged.
#ifndef CONVFOREVER_DATA_WDS_COUNT_H_
#define CONVFOREVER_DATA_WDS_COUNT_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "convforever/data/source.h"
#include "convforever/data/wds.h"

namespace cf::data {

struct WdsTrainSamples {
  int64_t samples = 0;
  std::string how;         // "given", "counted", "counted, N shard(s) unreadable" or "from cache"
  std::string cache_file;  // where the count is cached; empty when it is not
};

// `should_stop` (may be empty) is polled while counting; when it turns true the count is
// abandoned with CANCELLED.
// `what` names the set in the log line ("wds: N training samples (counted ...)").
absl::StatusOr<WdsTrainSamples> ResolveWdsTrainSamples(const WdsSource& source,
                                                       const std::function<bool()>& should_stop = {},
                                                       const std::string& what = "training");

// The directory cache files go to (not created).
std::string WdsCountCacheDir();

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_WDS_COUNT_H_
