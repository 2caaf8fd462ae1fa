// EpochSteps: a run's length and its epoch boundaries in steps when epochs differ in length
// (progressive resizing with per-stage batch sizes), and the old arithmetic when they do not.
#include "convforever/train/epoch_steps.h"

#include <cmath>

#include "gtest/gtest.h"

namespace cf::train {
namespace {

// 256 samples per rank: epochs 0-1 in batches of 64 (4 batches), from epoch 2 in batches of 32 (8).
int64_t Stages(int64_t epoch) { return epoch < 2 ? 4 : 8; }

TEST(EpochSteps, TotalIsTheSumOfEachEpochsOwnSteps) {
  absl::StatusOr<EpochSteps> s = EpochSteps::Count(4, 1, Stages);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->total(), 4 + 4 + 8 + 8);  // not 4 x epoch 0's 4
  EXPECT_FALSE(s->uniform());
  EXPECT_EQ(s->StepAtEpoch(0), 0);
  EXPECT_EQ(s->StepAtEpoch(1), 4);
  EXPECT_EQ(s->StepAtEpoch(2), 8);
  EXPECT_EQ(s->StepAtEpoch(2.5), 12);
  EXPECT_EQ(s->StepAtEpoch(3), 16);
  EXPECT_EQ(s->StepAtEpoch(5), 32);  // past the run: the last epoch's length continues
}

TEST(EpochSteps, AccumulationAndFractionalEpochs) {
  absl::StatusOr<EpochSteps> s = EpochSteps::Count(2.5, 2, Stages);  // 2, 2, then half of 4
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->total(), 2 + 2 + 2);
  EXPECT_EQ(s->steps_in_epoch(2), 4);
}

// All epochs alike: the same numbers as epochs x steps_per_epoch.
TEST(EpochSteps, UniformEpochsKeepTheOldArithmetic) {
  for (double epochs : {1.0, 3.0, 0.5, 2.3}) {
    absl::StatusOr<EpochSteps> s = EpochSteps::Count(epochs, 3, [](int64_t) { return 31; });
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->uniform());
    EXPECT_EQ(s->total(), static_cast<int64_t>(std::ceil(epochs * 10))) << epochs;
    EXPECT_EQ(s->StepAtEpoch(0.25), std::llround(0.25 * 10));
  }
}

TEST(EpochSteps, AnEpochShorterThanOneStepIsNamed) {
  absl::StatusOr<EpochSteps> s = EpochSteps::Count(3, 4, [](int64_t e) { return e == 2 ? 3 : 8; });
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("epoch 2"), std::string::npos) << s.status();
  EXPECT_NE(s.status().message().find("--gradient_accumulation_steps=4"), std::string::npos);
}

}  // namespace
}  // namespace cf::train
