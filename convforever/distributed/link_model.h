// A slow link, emulated: collectives finish no earlier than a link of `mbps` megabits per second
// with `latency_ms` per message would let them, so that one machine shows what data parallel,
// PowerSGD or DiLoCo would do between two homes or two regions.
//
// The model is one full-duplex link per rank, shared by its collectives in order: a collective's
// transfer starts when the link is free (or now), occupies it for ring bytes x 8 / bandwidth (the
// larger direction, byte_ledger.h's ring model), and completes `hops` latencies later (a ring
// all-reduce takes 2(W-1) message steps, reduce-scatter / all-gather / broadcast W-1). Wait() on
// the collective then sleeps until that time if the real one was faster. Real transfers are not
// slowed; a real link slower than the model is not hidden. Off (mbps 0 and latency 0) costs
// nothing. Thread-safe.
#ifndef CONVFOREVER_DISTRIBUTED_LINK_MODEL_H_
#define CONVFOREVER_DISTRIBUTED_LINK_MODEL_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cf::distributed {

struct LinkOptions {
  double mbps = 0;        // link bandwidth in megabits/s (10^6 bits); 0 = unlimited
  double latency_ms = 0;  // one-way latency per message step
  bool enabled() const { return mbps > 0 || latency_ms > 0; }
};

class LinkModel {
 public:
  explicit LinkModel(LinkOptions options) : options_(options) {}

  const LinkOptions& options() const { return options_; }

  // Reserves the link for `ring_bytes` starting at `now` (or when the link frees up) and returns
  // when the collective may complete.
  absl::Time Reserve(absl::Time now, int64_t ring_bytes, int hops);

  // Time on the wire of `ring_bytes` plus `hops` latencies, with no queueing.
  absl::Duration TransferTime(int64_t ring_bytes, int hops) const;

 private:
  const LinkOptions options_;
  absl::Mutex mu_;
  absl::Time link_free_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_LINK_MODEL_H_
