// The indices of a random-access source that one part of a held-out split (holdout.h) keeps.
//
// Loader::Create applies this before the subset: training reads spec.holdout_part = kTraining,
// evaluation kHeldOut of the same data, and the two never share a sample because the decision is
// InHoldoutPart on Source::SampleKey(i) alone. Keys are read without fetching anything.
#ifndef CONVFOREVER_DATA_HOLDOUT_SELECT_H_
#define CONVFOREVER_DATA_HOLDOUT_SELECT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/data/source.h"

namespace cf::data {

// Ascending indices of `source` in spec.holdout_part of a split holding out
// spec.holdout_fraction; empty for kAll (every sample, no selection). Errors: a fraction outside
// [0, 1), a part asked of a source without keys (its data ships its own splits), and a part that
// selects nothing (the message names the fraction, the part and spec.path).
absl::StatusOr<std::vector<int64_t>> SelectHoldoutPart(const Source& source, const DatasetSpec& spec);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_HOLDOUT_SELECT_H_
