#include "convforever/distributed/link_model.h"

#include <algorithm>

namespace cf::distributed {
namespace {

absl::Duration WireTime(const LinkOptions& o, int64_t ring_bytes) {
  if (o.mbps <= 0) return absl::ZeroDuration();
  return absl::Seconds(static_cast<double>(ring_bytes) * 8.0 / (o.mbps * 1e6));
}

}  // namespace

absl::Duration LinkModel::TransferTime(int64_t ring_bytes, int hops) const {
  return WireTime(options_, ring_bytes) + hops * absl::Milliseconds(options_.latency_ms);
}

absl::Time LinkModel::Reserve(absl::Time now, int64_t ring_bytes, int hops) {
  const absl::Duration wire = WireTime(options_, ring_bytes);
  absl::MutexLock lock(&mu_);
  const absl::Time start = std::max(now, link_free_);
  link_free_ = start + wire;
  return link_free_ + hops * absl::Milliseconds(options_.latency_ms);
}

}  // namespace cf::distributed
