#include "convforever/distributed/byte_ledger.h"

namespace cf::distributed {

const char* TensorKindName(TensorKind kind) {
  switch (kind) {
    case TensorKind::kGradient: return "gradient";
    case TensorKind::kCompressed: return "compressed";
    case TensorKind::kPseudoGradient: return "pseudo_gradient";
    case TensorKind::kParameter: return "parameter";
    case TensorKind::kControl: return "control";
    case TensorKind::kOther: return "other";
  }
  return "other";
}

ByteCounts& ByteCounts::operator+=(const ByteCounts& o) {
  payload_sent += o.payload_sent;
  payload_received += o.payload_received;
  ring_sent += o.ring_sent;
  ring_received += o.ring_received;
  collectives += o.collectives;
  return *this;
}

ByteCounts CollectiveBytes(CollectiveOp op, int64_t bytes, int world_size, bool is_root) {
  ByteCounts c;
  if (world_size <= 1) return c;
  c.collectives = 1;
  const int64_t w = world_size;
  switch (op) {
    case CollectiveOp::kAllReduce:
      c.payload_sent = c.payload_received = bytes;
      c.ring_sent = c.ring_received = 2 * (w - 1) * bytes / w;
      break;
    case CollectiveOp::kBroadcast:
      c.payload_sent = is_root ? bytes : 0;
      c.payload_received = is_root ? 0 : bytes;
      // Counted as the payload: the root's tensor leaves once, every other rank gets it once.
      c.ring_sent = c.payload_sent;
      c.ring_received = c.payload_received;
      break;
    case CollectiveOp::kReduceScatter:
      c.payload_sent = bytes;
      c.payload_received = bytes / w;
      c.ring_sent = c.ring_received = (w - 1) * bytes / w;
      break;
    case CollectiveOp::kAllGather:
      c.payload_sent = bytes;
      c.payload_received = bytes * w;
      c.ring_sent = c.ring_received = (w - 1) * bytes;
      break;
  }
  return c;
}

void ByteLedger::Record(TensorKind kind, const ByteCounts& counts) {
  absl::MutexLock lock(&mu_);
  totals_[static_cast<int>(kind)] += counts;
  interval_[static_cast<int>(kind)] += counts;
}

ByteLedger::PerKind ByteLedger::Totals() const {
  absl::MutexLock lock(&mu_);
  return totals_;
}

ByteCounts ByteLedger::Total() const { return Sum(Totals()); }

ByteLedger::PerKind ByteLedger::TakeInterval() {
  absl::MutexLock lock(&mu_);
  PerKind out = interval_;
  interval_ = PerKind{};
  return out;
}

ByteCounts Sum(const ByteLedger::PerKind& per_kind) {
  ByteCounts total;
  for (const ByteCounts& c : per_kind) total += c;
  return total;
}

}  // namespace cf::distributed
