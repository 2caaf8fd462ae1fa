// The data side of a training run: the training and evaluation loaders that the flags describe.
//
// From TrainerOptions: the dataset spec of each side (the data kind, its location and defaults:
// Fashion-MNIST's Debian path, synthetic data's sizes, a wds epoch length), the held-out set
// evaluation reads (eval_data.h: --eval_data_dir, --eval_fraction by key hash, or the data's own
// test split, else an error), the loader options (augmentation, MixUp/CutMix, progressive stages
// for training; resize + center crop for evaluation; a stop signal wakes a loader waiting on
// data), this rank's shard of each (evaluation unpadded: each sample on exactly one rank), and the
// class names (--class_list, else the ones the data defines). Logs which eval set is used and its
// size. Errors name the flag or the file.
#ifndef CONVFOREVER_TRAIN_RUN_DATA_H_
#define CONVFOREVER_TRAIN_RUN_DATA_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convforever/data/loader.h"
#include "convforever/train/trainer.h"

namespace cf::train {

struct RunData {
  std::unique_ptr<data::Loader> train;
  std::unique_ptr<data::Loader> eval;
  std::vector<std::string> class_names;  // empty when neither a class list nor the data names them
};

absl::StatusOr<RunData> BuildRunData(const TrainerOptions& options, int rank, int world_size);

}  // namespace cf::train

#endif  // CONVFOREVER_TRAIN_RUN_DATA_H_
