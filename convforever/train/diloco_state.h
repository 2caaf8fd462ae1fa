// The trainer's side of --sync=diloco (convforever/distributed/diloco.h): building DiLoCo from
// TrainerOptions, and its part of a checkpoint.
//
// Every rank's inner optimizer has its own state, and with bf16/int8 its own error feedback; with
// fragments or a checkpoint between outer steps (epoch ends) its weights are its own too. So every
// rank writes, into rank 0's checkpoint directory (train_state.cc's protocol of ZeRO shards: two
// barriers around rank 0's writer):
//   diloco_rank<r>_of<W>.safetensors  "error_feedback/<param>", "pending/local_delta"; ranks r > 0
//                                     also "model/<name>" (weights and buffers) and
//                                     "optimizer/<param>/<slot>" (metadata "optimizer": its JSON)
//   rng_rank<r>.bin                   ranks r > 0 (train_state.cc)
// and rank 0 (whose weights and optimizer are model.safetensors and optimizer.safetensors as usual)
//   diloco_outer.safetensors          "theta_last/<param>", "momentum/<param>", "pending/avg"
// with {"diloco": {"world_size", "inner_steps", "fragments", "dtype"}} in trainer_state.json.
// A DiLoCo checkpoint resumes only under DiLoCo with the same world size, fragments and dtype (an
// error names both); a checkpoint without DiLoCo state starts the outer loop from its weights.
#ifndef CONVFOREVER_TRAIN_DILOCO_STATE_H_
#define CONVFOREVER_TRAIN_DILOCO_STATE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convforever/distributed/communicator.h"
#include "convforever/distributed/diloco.h"
#include "convforever/models/model.h"
#include "convforever/train/trainer.h"
#include "nlohmann/json.hpp"

namespace cf::train {

class RunSetup;

// DiLoCo over the model's trainable parameters (call after the initial broadcast).
absl::StatusOr<std::unique_ptr<distributed::DiLoCo>> CreateDiLoCo(const TrainerOptions& options,
                                                                  distributed::Communicator* comm,
                                                                  models::Model& model);

// trainer_state.json's "diloco" entry.
nlohmann::json DiLoCoCheckpointJson(RunSetup* run);

// This rank's files into `dir` (every rank; rank 0 also the outer state). Finishes an overlapped
// collective in flight first.
absl::Status WriteDiLoCoRankFiles(const std::string& dir, RunSetup* run);

// After the model and rank 0's optimizer state were loaded: the outer state, then this rank's.
absl::Status LoadDiLoCoState(const std::string& dir, const nlohmann::json& state, RunSetup* run);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_DILOCO_STATE_H_
