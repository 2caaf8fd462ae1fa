// The ledger's arithmetic (payload and ring model per collective, per kind, intervals) and the
// link model's clock, by hand-computed values.
#include "convforever/distributed/byte_ledger.h"

#include "convforever/distributed/link_model.h"
#include "gtest/gtest.h"

namespace cf::distributed {
namespace {

TEST(CollectiveBytes, RingModelByHand) {
  // 4 ranks, 1000 bytes.
  ByteCounts ar = CollectiveBytes(CollectiveOp::kAllReduce, 1000, 4, false);
  EXPECT_EQ(ar.payload_sent, 1000);
  EXPECT_EQ(ar.payload_received, 1000);
  EXPECT_EQ(ar.ring_sent, 1500);  // 2 * 3/4 * 1000
  EXPECT_EQ(ar.ring_received, 1500);
  ByteCounts rs = CollectiveBytes(CollectiveOp::kReduceScatter, 1000, 4, false);
  EXPECT_EQ(rs.payload_sent, 1000);
  EXPECT_EQ(rs.payload_received, 250);
  EXPECT_EQ(rs.ring_sent, 750);
  ByteCounts ag = CollectiveBytes(CollectiveOp::kAllGather, 250, 4, false);
  EXPECT_EQ(ag.payload_sent, 250);
  EXPECT_EQ(ag.payload_received, 1000);
  EXPECT_EQ(ag.ring_sent, 750);
  ByteCounts root = CollectiveBytes(CollectiveOp::kBroadcast, 1000, 4, true);
  ByteCounts leaf = CollectiveBytes(CollectiveOp::kBroadcast, 1000, 4, false);
  EXPECT_EQ(root.payload_sent, 1000);
  EXPECT_EQ(root.payload_received, 0);
  EXPECT_EQ(leaf.payload_sent, 0);
  EXPECT_EQ(leaf.payload_received, 1000);
  // Two ranks: a ring all-reduce moves the tensor once each way.
  EXPECT_EQ(CollectiveBytes(CollectiveOp::kAllReduce, 1000, 2, false).ring_sent, 1000);
  // One rank moves nothing.
  EXPECT_EQ(CollectiveBytes(CollectiveOp::kAllReduce, 1000, 1, false).collectives, 0);
}

TEST(ByteLedger, PerKindTotalsAndIntervals) {
  ByteLedger ledger;
  ledger.Record(TensorKind::kGradient, CollectiveBytes(CollectiveOp::kAllReduce, 400, 2, false));
  ledger.Record(TensorKind::kGradient, CollectiveBytes(CollectiveOp::kAllReduce, 100, 2, false));
  ledger.Record(TensorKind::kControl, CollectiveBytes(CollectiveOp::kAllReduce, 8, 2, false));
  ByteLedger::PerKind interval = ledger.TakeInterval();
  EXPECT_EQ(interval[static_cast<int>(TensorKind::kGradient)].payload_sent, 500);
  EXPECT_EQ(interval[static_cast<int>(TensorKind::kGradient)].collectives, 2);
  EXPECT_EQ(interval[static_cast<int>(TensorKind::kControl)].payload_sent, 8);
  EXPECT_EQ(Sum(interval).payload_sent, 508);
  ledger.Record(TensorKind::kPseudoGradient, CollectiveBytes(CollectiveOp::kAllGather, 50, 2, false));
  interval = ledger.TakeInterval();
  EXPECT_EQ(Sum(interval).payload_sent, 50);
  EXPECT_EQ(Sum(interval).payload_received, 100);
  EXPECT_EQ(ledger.Total().payload_sent, 558);
  EXPECT_EQ(Sum(ledger.TakeInterval()).collectives, 0);
  EXPECT_STREQ(TensorKindName(TensorKind::kPseudoGradient), "pseudo_gradient");
}

TEST(LinkModel, CollectivesQueueOnTheLink) {
  LinkModel link({/*mbps=*/100, /*latency_ms=*/20});
  // 12.5 MB at 100 Mbit/s = 1 s on the wire; 2 hops of 20 ms.
  EXPECT_EQ(link.TransferTime(12'500'000, 2), absl::Milliseconds(1040));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_EQ(link.Reserve(t0, 12'500'000, 2), t0 + absl::Milliseconds(1040));
  // A second collective issued at the same time waits for the wire.
  EXPECT_EQ(link.Reserve(t0, 1'250'000, 2), t0 + absl::Milliseconds(1100 + 40));
  // One issued after the link went idle starts at once.
  const absl::Time later = t0 + absl::Seconds(10);
  EXPECT_EQ(link.Reserve(later, 0, 1), later + absl::Milliseconds(20));
  EXPECT_FALSE(LinkOptions{}.enabled());
}

}  // namespace
}  // namespace cf::distributed
