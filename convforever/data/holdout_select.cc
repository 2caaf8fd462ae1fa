#include "convforever/data/holdout_select.h"

#include "absl/strings/str_cat.h"
#include "convforever/data/holdout.h"

namespace cf::data {

absl::StatusOr<std::vector<int64_t>> SelectHoldoutPart(const Source& source, const DatasetSpec& spec) {
  std::vector<int64_t> keep;
  if (spec.holdout_part == HoldoutPart::kAll) return keep;
  const double f = spec.holdout_fraction;
  if (!(f > 0 && f < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("held-out fraction must be in (0, 1) to select the ", HoldoutPartName(spec.holdout_part),
                     " part of ", spec.path, ", got ", f));
  }
  const int64_t n = source.size();
  for (int64_t i = 0; i < n; ++i) {
    const std::string key = source.SampleKey(i);
    if (key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          spec.kind, " data at ", spec.path, " has no sample keys for a held-out split (sample ", i,
          "); it ships its own test split"));
    }
    if (InHoldoutPart(key, f, spec.holdout_part)) keep.push_back(i);
  }
  if (keep.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", HoldoutPartName(spec.holdout_part), " part of ", spec.path, " is empty: holding out ", f,
        " of its ", n, " samples by key hash leaves none there (choose another fraction)"));
  }
  return keep;
}

}  // namespace cf::data
