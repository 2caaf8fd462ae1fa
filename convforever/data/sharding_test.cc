#include "convforever/data/sharding.h"

#include <map>
#include <set>

#include <gtest/gtest.h>

namespace cf::data {
namespace {

TEST(ShardingTest, EverySampleOnceAcrossRanksWithDropLast) {
  for (int world : {1, 2, 3, 8}) {
    std::map<int64_t, int> seen;
    for (int r = 0; r < world; ++r) {
      ShardSpec s{42, true, true, r, world};
      auto mine = ShardEpochIndices(103, 5, s);
      EXPECT_EQ(static_cast<int64_t>(mine.size()), 103 / world);
      for (int64_t i : mine) ++seen[i];
    }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), (103 / world) * world);
    for (auto& [i, n] : seen) EXPECT_EQ(n, 1) << "sample " << i;
  }
}

TEST(ShardingTest, PaddingCoversAllWithEqualCounts) {
  const int world = 4;
  std::set<int64_t> seen;
  for (int r = 0; r < world; ++r) {
    ShardSpec s{1, true, false, r, world};
    auto mine = ShardEpochIndices(10, 0, s);
    EXPECT_EQ(mine.size(), 3u);
    seen.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(seen.size(), 10u);
}

// Evaluation's shards: without padding, 10 samples over 4 ranks are 3 + 3 + 2 + 2, each sample
// exactly once (padding would give every rank 3 and count samples 0 and 1 twice).
TEST(ShardingTest, UnpaddedShardsHoldEverySampleOnce) {
  const int world = 4;
  std::multiset<int64_t> seen;
  std::vector<size_t> counts;
  for (int r = 0; r < world; ++r) {
    ShardSpec s{5, /*shuffle=*/true, /*drop_last=*/false, r, world, /*pad=*/false};
    auto mine = ShardEpochIndices(10, 2, s);
    EXPECT_EQ(static_cast<int64_t>(mine.size()), SamplesPerRank(10, s));
    counts.push_back(mine.size());
    seen.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(counts, (std::vector<size_t>{3, 3, 2, 2}));
  ASSERT_EQ(seen.size(), 10u);
  for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(seen.count(i), 1u) << "sample " << i;
  // More ranks than samples: the last ranks get none.
  ShardSpec last{5, false, false, 3, 4, /*pad=*/false};
  EXPECT_TRUE(ShardEpochIndices(2, 0, last).empty());
}

TEST(ShardingTest, ShuffleDependsOnSeedAndEpochOnly) {
  EXPECT_EQ(Permutation(1000, 3, 7), Permutation(1000, 3, 7));
  EXPECT_NE(Permutation(1000, 3, 7), Permutation(1000, 3, 8));
  EXPECT_NE(Permutation(1000, 3, 7), Permutation(1000, 4, 7));
  ShardSpec s{3, false, false, 1, 2};
  auto mine = ShardEpochIndices(6, 9, s);
  EXPECT_EQ(mine, (std::vector<int64_t>{1, 3, 5}));
}

TEST(ShardingTest, BatchCounts) {
  EXPECT_EQ(BatchesFor(10, 4, true), 2);
  EXPECT_EQ(BatchesFor(10, 4, false), 3);
  EXPECT_EQ(BatchesFor(3, 4, true), 0);
}

}  // namespace
}  // namespace cf::data
