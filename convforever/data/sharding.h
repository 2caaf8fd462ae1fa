// The sharding and shuffling contract every random-access source shares (as DALI's readers and
// PyTorch's DistributedSampler): for epoch e, the n sample indices are permuted by a Fisher-Yates
// shuffle seeded from (seed, e) (identity when !shuffle); the list is then cut to a multiple of
// world_size (drop_last) or padded to one by wrapping around to its start; rank r takes positions
// r, r + world_size, ... So each epoch every sample is seen exactly once across ranks (a few
// twice when padding), and all ranks have the same count. Without padding (!drop_last && !pad,
// for evaluation) rank r takes only the positions below n: every sample exactly once over the
// ranks, and the ranks' counts differ by at most one. Pure functions.
#ifndef CONVFOREVER_DATA_SHARDING_H_
#define CONVFOREVER_DATA_SHARDING_H_

#include <cstdint>
#include <vector>

namespace cf::data {

struct ShardSpec {
  uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = false;
  int rank = 0, world_size = 1;
  bool pad = true;  // !drop_last: pad to equal counts (training) or not (evaluation)
};

// Indices this rank visits in epoch `epoch`, in order.
std::vector<int64_t> ShardEpochIndices(int64_t n, int64_t epoch, const ShardSpec& s);
// Number of samples this rank (s.rank) gets of n samples.
int64_t SamplesPerRank(int64_t n, const ShardSpec& s);
// Batches per rank: floor with drop_last, else ceil (the last batch may be short).
int64_t BatchesFor(int64_t samples, int64_t batch_size, bool drop_last);
// A deterministic permutation of [0, n) from (seed, epoch).
std::vector<int64_t> Permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_SHARDING_H_
