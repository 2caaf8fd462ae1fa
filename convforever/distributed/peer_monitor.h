// Heartbeats through the rendezvous store, so that a failed collective can say *which* rank died
// or stalled instead of "connection reset". Each rank's background thread sets
// `cf_heartbeat/<rank>` to an increasing counter every `interval`; Diagnose() samples every
// rank's counter twice, a few intervals apart, and names the ranks whose counter did not move
// (or never appeared). Internal to cf::distributed (used by the c10d communicator).
// Thread-safe: the store client is guarded by a mutex shared by the thread and Diagnose().
#ifndef CONVFOREVER_DISTRIBUTED_PEER_MONITOR_H_
#define CONVFOREVER_DISTRIBUTED_PEER_MONITOR_H_

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "absl/time/time.h"

namespace cf::distributed {

class PeerMonitor {
 public:
  // `store` is a client connection of its own (not shared with the process group).
  PeerMonitor(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size,
              absl::Duration interval, std::string store_owner);
  ~PeerMonitor();

  // Returns e.g. "rank 1 stopped responding (no heartbeat for 3.0 s)" or "the rendezvous store
  // (served by rank 0) is unreachable: rank 0 has probably exited". Blocks ~3 intervals.
  std::string Diagnose();

 private:
  void Run();
  bool ReadCounters(std::vector<std::string>* values, std::string* error);

  c10::intrusive_ptr<c10d::Store> store_;
  int rank_;
  int world_size_;
  absl::Duration interval_;
  std::string store_owner_;
  std::mutex store_mu_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_PEER_MONITOR_H_
