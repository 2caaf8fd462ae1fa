#include "convforever/data/sharding.h"

#include <numeric>

#include "convforever/data/rng.h"

namespace cf::data {

std::vector<int64_t> Permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), 0);
  Rng rng(SeedFrom({seed, static_cast<uint64_t>(epoch), 0x5348554646ull /* "SHUFF" */}));
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rng.Below(i + 1)]);
  return p;
}

int64_t SamplesPerRank(int64_t n, const ShardSpec& s) {
  const int64_t w = s.world_size;
  if (s.drop_last) return n / w;
  if (s.pad) return (n + w - 1) / w;
  return n > s.rank ? (n - s.rank + w - 1) / w : 0;  // positions r, r + w, ... below n
}

std::vector<int64_t> ShardEpochIndices(int64_t n, int64_t epoch, const ShardSpec& s) {
  std::vector<int64_t> order;
  if (s.shuffle) {
    order = Permutation(n, s.seed, epoch);
  } else {
    order.resize(n);
    std::iota(order.begin(), order.end(), 0);
  }
  const int64_t per_rank = SamplesPerRank(n, s);
  std::vector<int64_t> mine;
  mine.reserve(per_rank);
  for (int64_t k = 0; k < per_rank; ++k) {
    const int64_t pos = k * s.world_size + s.rank;
    mine.push_back(order[pos % n]);  // wraps only when padding
  }
  return mine;
}

int64_t BatchesFor(int64_t samples, int64_t batch_size, bool drop_last) {
  return drop_last ? samples / batch_size : (samples + batch_size - 1) / batch_size;
}

}  // namespace cf::data
