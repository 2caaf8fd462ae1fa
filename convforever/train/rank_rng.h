// Every rank's random-number-generator state for a checkpoint that rank 0 writes alone (plain
// data parallel): ranks draw different dropout / drop-path masks (their generators are seeded
// seed + rank), so an exact resume needs each rank's own state, not rank 0's for all. A
// collective: every rank calls GatherRngStates at the same point, and each gets all ranks'
// encoded states (rng_state.h's EncodeRngState) in rank order; the directory need not be shared.
// Wire format: each rank's blob, length-prefixed (u64 little-endian) and padded to the longest,
// all-gathered as bytes on the communicator's device (CUDA under NCCL). Not thread-safe: call
// from the training thread between steps.
#ifndef CONVFOREVER_TRAIN_RANK_RNG_H_
#define CONVFOREVER_TRAIN_RANK_RNG_H_

#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "absl/status/statusor.h"
#include "convforever/distributed/communicator.h"

namespace cf::train {

absl::StatusOr<std::vector<std::string>> GatherRngStates(distributed::Communicator& comm,
                                                         const c10::Device& device);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_RANK_RNG_H_
