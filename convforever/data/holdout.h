// A held-out split chosen by each sample's key, for datasets that ship no test split of their own
// (an image folder, a JSONL list, WebDataset or Parquet shards).
//
// A sample is held out when a 64-bit hash of its key (FNV-1a, then a splitmix64 finaliser so
// similar keys spread evenly), read as a fraction in [0, 1), is below `fraction`. The decision
// depends on the key alone: not on the sample's position, the shard order, the rank, the seed or
// the machine, so the training side (kTraining) and the held-out side (kHeldOut) of the same data
// never share a sample, and the split stays the same when files are added, reordered or moved.
// Keys are the ones sources give their samples: a path relative to the dataset root, a URL, a
// WebDataset "<shard file name>:<key>", a Parquet "<file name>:<row>".
#ifndef CONVFOREVER_DATA_HOLDOUT_H_
#define CONVFOREVER_DATA_HOLDOUT_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace cf::data {

enum class HoldoutPart {
  kAll,       // no split: every sample
  kTraining,  // the samples not held out
  kHeldOut,   // the held-out samples
};

// The key's position in [0, 1): the hash above divided by 2^64.
double HoldoutPosition(absl::string_view key);

// Whether a sample with this key belongs to `part` of a split that holds out `fraction`
// (0 <= fraction < 1; 0 holds nothing out, so kHeldOut is then empty).
bool InHoldoutPart(absl::string_view key, double fraction, HoldoutPart part);

// "all", "training" or "held-out", for logs.
const char* HoldoutPartName(HoldoutPart part);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_HOLDOUT_H_
