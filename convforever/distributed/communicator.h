// One small collective-communication interface over c10d, the engines PyTorch itself uses:
// ProcessGroupGloo on CPU tensors and ProcessGroupNCCL on CUDA tensors (the latter only in builds
// with CF_WITH_CUDA). Rendezvous goes through c10d's TCPStore at MASTER_ADDR:MASTER_PORT: rank 0
// serves it, or, under torchrun's agent store, every rank connects to the agent's as a client.
//
// Contract:
//   * Collectives are matched by call order: every rank must issue the same collectives in the
//     same order with the same shapes (as with torch.distributed).
//   * Every blocking call returns within `CommOptions::timeout`. A failed or timed-out collective
//     returns a non-OK status whose message names the rank(s) found dead or stalled (each rank
//     publishes a heartbeat in the store; on failure the heartbeats are inspected) or says that
//     the store itself (rank 0 / the agent) is gone. Once a collective failed the communicator is
//     unusable; the caller should exit.
//   * Tensors are reduced in place, must be contiguous and on the backend's device; ranks must
//     pass identical shapes and dtypes.
//   * Not thread-safe: one thread issues collectives (DataParallel's autograd hooks run on the
//     backward thread, which is the issuing thread while backward runs).
//   * Every collective is counted in the communicator's ByteLedger under the TensorKind the caller
//     names (byte_ledger.h), and, with CommOptions::link set, finishes no earlier than the
//     emulated link allows (link_model.h). The engines implement the *Impl methods; callers use
//     the public ones, so nothing goes on the wire uncounted.
// world_size 1 gives a local communicator whose collectives are identities (no sockets), unless
// CommOptions::process_group_for_one_rank asks for the real engine.
#ifndef CONVFOREVER_DISTRIBUTED_COMMUNICATOR_H_
#define CONVFOREVER_DISTRIBUTED_COMMUNICATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "convforever/distributed/byte_ledger.h"
#include "convforever/distributed/launch_env.h"
#include "convforever/distributed/link_model.h"

namespace cf::distributed {

struct CommOptions {
  // "auto": NCCL when `cuda` and the build has CUDA, else Gloo. "gloo", "nccl" force one.
  std::string backend = "auto";
  bool cuda = false;  // tensors live on CUDA (the trainer's device)
  absl::Duration timeout = absl::Seconds(300);
  // Gloo transport: the network interface (as GLOO_SOCKET_IFNAME, which is read when this is
  // empty) or, failing that, loopback when the master is loopback and the host name otherwise.
  std::string gloo_interface;
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // world_size 1 normally gets the local identity communicator. True builds the backend's real
  // process group for the one rank instead (rendezvous at MASTER_ADDR:MASTER_PORT as usual), so
  // the engine itself can be checked on a machine with a single GPU (ci/gpu_check.sh's tests).
  bool process_group_for_one_rank = false;
  // An emulated slow link (tests and benchmarks of the low-bandwidth modes); off by default.
  LinkOptions link;
};

enum class ReduceOp { kSum, kMax, kMin };

// Handle to a collective in flight. Wait() blocks up to the communicator's timeout; it may be
// called more than once and returns the same status. Destroying an unwaited handle leaves the
// collective running (it keeps its tensors alive). A handle must not outlive its Communicator.
class AsyncWork {
 public:
  AsyncWork() = default;
  explicit AsyncWork(std::function<absl::Status()> wait) : wait_(std::move(wait)) {}
  absl::Status Wait();
  bool pending() const { return wait_ != nullptr && !result_.has_value(); }

 private:
  std::function<absl::Status()> wait_;
  std::optional<absl::Status> result_;
};

class Communicator {
 public:
  static absl::StatusOr<std::unique_ptr<Communicator>> Create(const LaunchEnv& env,
                                                              const CommOptions& options);
  virtual ~Communicator() = default;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  virtual std::string backend_name() const = 0;  // "gloo", "nccl" or "local"

  // Each tensor reduced in place across ranks (elementwise).
  AsyncWork AllReduceAsync(at::Tensor tensor, ReduceOp op = ReduceOp::kSum,
                           TensorKind kind = TensorKind::kOther);
  absl::Status AllReduce(std::vector<at::Tensor>& tensors, ReduceOp op,
                         TensorKind kind = TensorKind::kOther);
  absl::Status AllReduceSum(std::vector<at::Tensor>& tensors, TensorKind kind = TensorKind::kOther) {
    return AllReduce(tensors, ReduceOp::kSum, kind);
  }
  // Every tensor overwritten with root's.
  AsyncWork BroadcastAsync(at::Tensor tensor, int root, TensorKind kind = TensorKind::kOther);
  absl::Status Broadcast(std::vector<at::Tensor>& tensors, int root,
                         TensorKind kind = TensorKind::kOther);
  // input [world_size * S] (same shape on every rank) -> output [S]: rank r gets the sum over
  // ranks of input[r*S : (r+1)*S].
  AsyncWork ReduceScatterSumAsync(at::Tensor input, at::Tensor output,
                                  TensorKind kind = TensorKind::kOther);
  absl::Status ReduceScatterSum(at::Tensor input, at::Tensor output,
                                TensorKind kind = TensorKind::kOther) {
    return ReduceScatterSumAsync(std::move(input), std::move(output), kind).Wait();
  }
  // input [S] -> output [world_size * S] with rank r's input at output[r*S : (r+1)*S].
  AsyncWork AllGatherAsync(at::Tensor input, at::Tensor output, TensorKind kind = TensorKind::kOther);
  absl::Status AllGather(at::Tensor input, at::Tensor output, TensorKind kind = TensorKind::kOther) {
    return AllGatherAsync(std::move(input), std::move(output), kind).Wait();
  }
  virtual absl::Status Barrier() = 0;

  // Per-rank counters (loss sums, sample counts, timings) reduced across ranks in one collective:
  // each value becomes the sum/max/min over ranks. For metrics logged by rank 0. Counted as
  // TensorKind::kControl.
  absl::Status AllReduceScalars(std::vector<double>& values, ReduceOp op = ReduceOp::kSum);

  // Every byte this rank's collectives moved, by kind (byte_ledger.h).
  ByteLedger& ledger() { return ledger_; }
  const LinkOptions& link() const { return link_.options(); }

 protected:
  Communicator(int rank, int world_size, LinkOptions link = {})
      : rank_(rank), world_size_(world_size), link_(link) {}

  virtual AsyncWork AllReduceImpl(at::Tensor tensor, ReduceOp op) = 0;
  virtual AsyncWork BroadcastImpl(at::Tensor tensor, int root) = 0;
  virtual AsyncWork ReduceScatterSumImpl(at::Tensor input, at::Tensor output) = 0;
  virtual AsyncWork AllGatherImpl(at::Tensor input, at::Tensor output) = 0;

 private:
  // Records `op` of `bytes` under `kind` and, with an emulated link, makes `work` finish no
  // earlier than the link allows.
  AsyncWork Account(AsyncWork work, CollectiveOp op, int64_t bytes, TensorKind kind, bool is_root);

  int rank_;
  int world_size_;
  ByteLedger ledger_;
  LinkModel link_;
};

}  // namespace cf::distributed

#endif  // CONVFOREVER_DISTRIBUTED_COMMUNICATOR_H_
