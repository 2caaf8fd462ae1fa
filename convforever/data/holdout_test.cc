#include "convforever/data/holdout.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace cf::data {
namespace {

TEST(Holdout, PartsPartitionTheKeysAndHoldOutAboutTheFraction) {
  const int n = 20000;
  int held = 0;
  for (int i = 0; i < n; ++i) {
    const std::string key = absl::StrCat("train/class_", i % 10, "/img_", i, ".png");
    const bool in_train = InHoldoutPart(key, 0.1, HoldoutPart::kTraining);
    const bool in_held = InHoldoutPart(key, 0.1, HoldoutPart::kHeldOut);
    EXPECT_NE(in_train, in_held) << key;  // exactly one side
    EXPECT_TRUE(InHoldoutPart(key, 0.1, HoldoutPart::kAll));
    held += in_held;
  }
  // Binomial(20000, 0.1): sd 42; 6 sd either side.
  EXPECT_NEAR(held, 2000, 255);
}

TEST(Holdout, DependsOnTheKeyOnlyAndGrowsWithTheFraction) {
  EXPECT_EQ(HoldoutPosition("shard-000001.tar:sample_17"), HoldoutPosition("shard-000001.tar:sample_17"));
  EXPECT_NE(HoldoutPosition("shard-000001.tar:sample_17"), HoldoutPosition("shard-000001.tar:sample_18"));
  // A key held out at 5% stays held out at 20% (the 20% split contains the 5% one).
  for (int i = 0; i < 2000; ++i) {
    const std::string key = absl::StrCat("https://example.org/img/", i, ".jpg");
    if (InHoldoutPart(key, 0.05, HoldoutPart::kHeldOut)) {
      EXPECT_TRUE(InHoldoutPart(key, 0.2, HoldoutPart::kHeldOut)) << key;
    }
    const double p = HoldoutPosition(key);
    EXPECT_GE(p, 0.0);
    EXPECT_LT(p, 1.0);
  }
}

TEST(Holdout, FractionZeroHoldsNothingOut) {
  for (int i = 0; i < 1000; ++i) {
    const std::string key = absl::StrCat("k", i);
    EXPECT_FALSE(InHoldoutPart(key, 0.0, HoldoutPart::kHeldOut));
    EXPECT_TRUE(InHoldoutPart(key, 0.0, HoldoutPart::kTraining));
  }
}

// The positions of fixed keys (computed independently in Python from the definition in
// holdout.h): the split of a user's dataset must not move between releases.
TEST(Holdout, PositionsOfFixedKeysNeverChange) {
  EXPECT_DOUBLE_EQ(HoldoutPosition("cat/0001.jpg"), 0.5029146764464258);
  EXPECT_DOUBLE_EQ(HoldoutPosition("dog/0001.jpg"), 0.5689678190014665);
  EXPECT_DOUBLE_EQ(HoldoutPosition(""), 0.9576734252420561);
}

}  // namespace
}  // namespace cf::data
