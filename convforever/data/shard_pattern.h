// Shard name patterns shared by the sharded data kinds (WebDataset tars, Parquet files): a brace
// pattern (`shard-{000000..000127}.tar`, `{a,b}.parquet`) expands to the list of names it stands
// for; numeric ranges keep their zero padding. Pure functions.
#ifndef CONVFOREVER_DATA_SHARD_PATTERN_H_
#define CONVFOREVER_DATA_SHARD_PATTERN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cf::data {

// Expands every {a..b} numeric range and {x,y,z} list; error on unbalanced braces or a range
// that expands to more than 10^6 names.
absl::StatusOr<std::vector<std::string>> ExpandBraces(const std::string& pattern);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_SHARD_PATTERN_H_
