// The byte ledger: every collective a Communicator runs, counted per tensor kind, in two ways.
//
//   payload  what this rank hands to the collective and gets back from it, in bytes: an
//            all-reduce of N bytes sends N and receives N; a broadcast's root sends N and every
//            other rank receives N; a reduce-scatter sends its whole input and receives its shard;
//            an all-gather sends its shard and receives the whole output. This is the figure that
//            compression changes (PowerSGD's factors, DiLoCo's int8 pseudo-gradients) and that the
//            acceptance checks compare ("DDP's gradient payload = parameter bytes x steps").
//   ring     what a bandwidth-optimal ring moves over this rank's link: all-reduce 2(W-1)/W x N
//            each way, reduce-scatter and all-gather (W-1)/W x the full tensor, broadcast as its
//            payload (the root's tensor leaves once, every other rank receives it once). The figure a link's bandwidth divides (link_model.h).
// A world of one moves nothing and records nothing. Thread-safe (a mutex; collectives are few).
#ifndef CONVFOREVER_DISTRIBUTED_BYTE_LEDGER_H_
#define CONVFOREVER_DISTRIBUTED_BYTE_LEDGER_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/synchronization/mutex.h"

namespace cf::distributed {

// What a collective carries; the caller says (the ledger cannot tell gradients from weights).
enum class TensorKind {
  kGradient = 0,     // data parallel's gradient buckets, ZeRO's gradient reduction
  kCompressed,       // compressed gradients (PowerSGD's P and Q factors)
  kPseudoGradient,   // DiLoCo's outer-step deltas (any precision)
  kParameter,        // weights: the initial broadcast, ZeRO's all-gather, resynchronisation
  kControl,          // scalars: stop flags, metric sums, skip decisions
  kOther,
};
inline constexpr int kNumTensorKinds = 6;
const char* TensorKindName(TensorKind kind);  // "gradient", "compressed", ...

enum class CollectiveOp { kAllReduce, kBroadcast, kReduceScatter, kAllGather };

struct ByteCounts {
  int64_t payload_sent = 0;
  int64_t payload_received = 0;
  int64_t ring_sent = 0;
  int64_t ring_received = 0;
  int64_t collectives = 0;

  ByteCounts& operator+=(const ByteCounts& o);
};

// Bytes of one collective on one rank. `bytes` is the tensor handed in (all-reduce, broadcast),
// the full input (reduce-scatter) or the shard (all-gather); `is_root` matters for broadcast.
ByteCounts CollectiveBytes(CollectiveOp op, int64_t bytes, int world_size, bool is_root);

class ByteLedger {
 public:
  using PerKind = std::array<ByteCounts, kNumTensorKinds>;

  void Record(TensorKind kind, const ByteCounts& counts);
  PerKind Totals() const;                    // since construction
  ByteCounts Total() const;                  // summed over kinds
  // The counts since the previous call (per step, per log interval), and starts a new interval.
  PerKind TakeInterval();

 private:
  mutable absl::Mutex mu_;
  PerKind totals_ ABSL_GUARDED_BY(mu_);
  PerKind interval_ ABSL_GUARDED_BY(mu_);
};

ByteCounts Sum(const ByteLedger::PerKind& per_kind);

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_BYTE_LEDGER_H_
