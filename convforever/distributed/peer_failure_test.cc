// A dead or stalled peer ends the other ranks with an error that names it, within the timeout
// (real processes on 127.0.0.1, Gloo).
#include "convforever/distributed/communicator.h"

#include <csignal>

#include "convforever/distributed/multiprocess_harness.h"
#include "gtest/gtest.h"

namespace cf::distributed {
namespace {

using testing::RunRanks;
constexpr char kWorker[] = "convforever/distributed/dist_test_worker";

TEST(PeerFailure, KilledRankEndsTheOtherWithItsName) {
  auto results = RunRanks(kWorker, 2, {"--die_at_step=5", "--die_rank=1", "--timeout_s=10"});
  EXPECT_EQ(results[1].signal, SIGKILL);
  EXPECT_FALSE(results[0].killed_at_deadline || results[0].killed_after_peer_failure);
  EXPECT_EQ(results[0].exit_code, 3) << results[0].err;
  EXPECT_NE(results[0].err.find("rank 1 stopped responding"), std::string::npos) << results[0].err;
  EXPECT_NE(results[0].err.find("rank 0 of 2"), std::string::npos) << results[0].err;
}

TEST(PeerFailure, StalledRankTimesOutTheOtherWithItsName) {
  // Rank 1 SIGSTOPs itself: its sockets stay open, so only the timeout can end rank 0's wait.
  auto results = RunRanks(kWorker, 2, {"--stop_at_step=3", "--die_rank=1", "--timeout_s=4"},
                          /*deadline_s=*/50, /*grace_after_failure_s=*/1);
  EXPECT_FALSE(results[0].killed_at_deadline || results[0].killed_after_peer_failure);
  EXPECT_EQ(results[0].exit_code, 3) << results[0].err;
  EXPECT_NE(results[0].err.find("rank 1 stopped responding"), std::string::npos) << results[0].err;
  EXPECT_TRUE(results[1].killed_after_peer_failure);
}

TEST(PeerFailure, KilledStoreOwnerEndsTheOthers) {
  auto results = RunRanks(kWorker, 2, {"--die_at_step=5", "--die_rank=0", "--timeout_s=10"});
  EXPECT_EQ(results[0].signal, SIGKILL);
  EXPECT_FALSE(results[1].killed_at_deadline || results[1].killed_after_peer_failure);
  EXPECT_EQ(results[1].exit_code, 3) << results[1].err;
  EXPECT_NE(results[1].err.find("rank 0 has probably exited"), std::string::npos) << results[1].err;
}

}  // namespace
}  // namespace cf::distributed
